"""Each bundled face model's licence and training data, printed by `facellm analyze --licenses`."""

from __future__ import annotations

from facellm.faces.classifier import TASKS as CLASSIFIER_TASKS

RESEARCH_ONLY = "RESEARCH-ONLY weights: FACELLM_RESEARCH_MODELS=0 runs without them"
# (model, licence, training data) for `facellm analyze --licenses`; from the dlib-models README and package metadata.
BUNDLED_MODELS = [
    (
        "facellm faces/weights/yunet_n_320_320.onnx (YuNet face detector, run by OpenCV; Wu, Peng and Yu, 2023)",
        f"Apache-2.0 (github ShiqiYu/libfacedetection.train, unchanged); its training data is for research: "
        f"{RESEARCH_ONLY}",
        "WIDER FACE train, by its authors",
    ),
    (
        "dlib HOG frontal face detector (in dlib-bin)",
        "Boost Software License (dlib)",
        "not stated in the wheel; see dlib.net",
    ),
    (
        "mmod_human_face_detector.dat (CNN face detector, face-recognition-models)",
        "released into the public domain by its author, Davis King; package MIT",
        "public images annotated by Davis King",
    ),
    (
        "shape_predictor_5_face_landmarks.dat",
        "public domain (Davis King); package MIT",
        "dlib's 5-point landmark dataset, public images annotated by Davis King",
    ),
    (
        "shape_predictor_68_face_landmarks.dat",
        "the model file is public domain, but its training data (iBUG 300-W) "
        "excludes commercial use; use --landmarks 5 (or FACELLM_LANDMARKS=5) to avoid it",
        "iBUG 300-W",
    ),
    (
        "dlib_face_recognition_resnet_model_v1.dat (128-D descriptor; facellm runs its weights in torch)",
        "public domain (Davis King); package MIT",
        "about 3 million faces (FaceScrub, VGG Face and other public sets); 99.38% on LFW per its author",
    ),
    (
        "facellm faces/weights/fairface-attributes-v4.pt (age, gender, race)",
        "dlib's descriptor network (public domain) fine-tuned here on FairFace (CC BY 4.0, Karkkainen and Joo, WACV "
        "2021); research use, see MODEL_CARD.md",
        "about 3 million faces (dlib's descriptor), then FairFace train 1-40000",
    ),
    (
        "facellm faces/weights/fer2013-expression-v1.pt (7 expressions, grey faces)",
        f"trained here on FER2013 (Goodfellow et al. 2013); {RESEARCH_ONLY}",
        "FER2013 Training split",
    ),
    (
        "facellm faces/weights/rafdb-expression-v1.pt (7 expressions, colour faces)",
        f"the FER2013 model fine-tuned here on RAF-DB (academic licence; Li et al., CVPR 2017); {RESEARCH_ONLY}",
        "FER2013 Training split, then 4/5 of half of the RAF-DB basic train images (faces/splits.py)",
    ),
    (
        "facellm faces/weights/aflw2000-headpose-v2.pt (yaw, pitch, roll from the face crop and its 68 landmarks)",
        f"trained here on AFLW2000-3D (Zhu et al., CVPR 2016); {RESEARCH_ONLY}",
        "500 AFLW2000-3D faces, 4/5 of them for training, and their mirror images",
    ),
    (
        "facellm faces/weights/shanghaitech-mall-crowd-v2.pt (crowd counting: a density head over dlib's descriptor "
        "levels)",
        f"trained here on ShanghaiTech part B (Zhang et al., CVPR 2016) and Mall (Chen et al., BMVC 2012); "
        f"{RESEARCH_ONLY}",
        "the ShanghaiTech B train images and head positions, every 4th image held "
        "out; Mall frames 1-800, every 4th (github jeremiastraub/CountNet, datasets/Mall)",
    ),
    (
        "facellm faces/weights/celeba-attributes-v1.pt (CelebA's 40 binary attributes)",
        f"dlib's descriptor network (public domain) fine-tuned here on CelebA (Liu et al., ICCV 2015; non-commercial "
        f"research use only); {RESEARCH_ONLY}",
        "CelebA images 1-9000 (the 89 x 109 copies in github karthikSingireddy/cs389-hw4, attributes from "
        "list_attr_celeba.txt); see CELEBA_MODEL_CARD.md",
    ),
    *(
        (
            f"facellm faces/weights/{task.weights} ({name}: {' / '.join(task.classes)})",
            f"trained here; {task.licence}; {RESEARCH_ONLY}",
            task.data,
        )
        for name, task in CLASSIFIER_TASKS.items()
    ),
    (
        "OpenCV (opencv-python-headless, solvePnP: head pose when research-only weights are off)",
        "Apache 2.0",
        "no learned weights used",
    ),
]
