"""The paper's figures (Ryu et al. 2021, Tables 1-3): private liver data, shown beside ours as a reference only."""

PAPER = {
    "segmentation": {
        "two_click": [
            ("segmentation only", 68.5, 10.3),
            ("joint, trained benign/malignant", 70.0, 10.9),
            ("joint, trained 4-class", 68.5, 12.2),
        ],
        "one_click": [("joint", 37.4, None)],
    },
    "benign/malignant": {
        "joint": {
            "auroc": (0.970, 0.956, 0.982),
            "sensitivity": (95.0, 86.9, 98.1),
            "specificity": (86.0, 81.7, 94.1),
            "accuracy": (90.4, 87.6, 93.0),
        },
        "classification only": {
            "auroc": (0.944, 0.919, 0.964),
            "sensitivity": (91.5, 87.0, 95.5),
            "specificity": (89.0, 84.5, 93.5),
            "accuracy": (89.8, 86.8, 92.8),
        },
    },
    "multi-class": {
        "joint": {
            "auroc": (0.947, 0.929, 0.963),
            "sensitivity": (86.7, 82.8, 91.4),
            "specificity": (89.7, 85.1, 93.3),
            "accuracy": (82.2, 78.7, 85.9),
        },
        "classification only": {
            "auroc": (0.926, 0.905, 0.943),
            "sensitivity": (82.3, 79.7, 89.2),
            "specificity": (89.7, 83.0, 92.3),
            "accuracy": (79.8, 75.8, 83.5),
        },
    },
    # Table 3 (joint system): rows reference, columns predicted; 100 images x 5 inputs per class.
    "confusion_classes": ("cyst", "hemangioma", "metastasis", "hcc"),
    "confusion_matrix": [[472, 15, 5, 8], [1, 413, 46, 40], [0, 46, 423, 31], [0, 37, 127, 336]],
}

# The paper's p-values of joint vs the single-task system, as printed (Tables 1-2): two-click Jaccard for the
# joint system trained benign/malignant and 4-class; the classification figures by task.
PAPER_P = {
    "two_click": {"benign/malignant": "< 0.001", "multi-class": "0.95"},
    "benign/malignant": {"auroc": "0.020", "sensitivity": "0.008", "specificity": "0.029", "accuracy": "0.48"},
    "multi-class": {"auroc": "0.040", "sensitivity": "< 0.001", "specificity": "0.27", "accuracy": "0.01"},
}

# Mean IoU after k clicks of general-purpose interactive models, zero-shot on breast ultrasound with RITM's
# clicker (Mazurowski et al., "Segment anything model for medical image analysis: an experimental study",
# Med Image Anal 2023), at 1, 3, 5 and 9 clicks: drawn beside our curve for reference (other images).
PUBLISHED_CLICK_CURVES = {
    "clicks": (1, 3, 5, 9),
    "source": "Mazurowski et al., Med Image Anal 2023, breast ultrasound",
    "curves": {
        "RITM": (0.23, 0.66, 0.81, 0.91),
        "SimpleClick": (0.41, 0.71, 0.82, 0.91),
        "FocalClick": (0.54, 0.74, 0.81, 0.88),
        "SAM ViT-H": (0.47, 0.60, 0.62, 0.60),
    },
}
