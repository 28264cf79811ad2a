"""Shipped weights-only checkpoints for ``init_from`` (e.g. ``init_from: busi_joint_lite``)."""
