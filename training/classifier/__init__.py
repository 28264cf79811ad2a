"""The classification head refitted on a frozen network: cached features, grouped cross-validation, calibration."""
