"""Distribution `ferminet-toolkit`: synthesize, convert, measure and ship on-device networks."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="ferminet-toolkit",
    version="0.1.0",
    description=(
        "Generative synthesis of efficient networks (FermiNets), validated int8 TFLite "
        "conversion, and latency/energy profiling on Android phones over ADB."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["toolkit", "toolkit.*", "android_harness", "android_harness.*",
                                    "device_profiles", "device_profiles.*"]),
    package_data={"device_profiles": ["*.json", "schema/*.json"]},
    include_package_data=True,
    install_requires=[
        # The harness (android_harness, device_profiles) needs only these four.
        "numpy>=1.26",
        "adb-shell>=0.4.4",
        "adbutils>=2.0",
        "cryptography>=41.0",  # ADB keys: generated like adb, verified by the virtual phone
        # The toolkit proper.
        "tensorflow>=2.16",
        "ai-edge-litert>=2.2",  # per-op profiling uses the C API of 2.2+
        "pandas>=2.0",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "scikit-learn>=1.3",  # toolkit.predict: per-kernel regressors (brings scipy and joblib)
    ],
    extras_require={
        "export": ["mediapipe>=0.10"],
        "ray": ["ray>=2.50"],  # toolkit.scale: synthesize --executor ray, ferminet agent (phones as Ray resources)
        "test": ["pytest>=7.4", "mediapipe>=0.10", "ray>=2.50"],
    },
    entry_points={"console_scripts": ["ferminet=toolkit.cli.main:main"]},
)
