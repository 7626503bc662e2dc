"""plm_tf: RoBERTa, ALBERT and ELECTRA pretraining in TensorFlow 2 / Keras 3."""
import setuptools

# The TF stack is pinned as a set: tensorflow-text must match tensorflow's minor version,
# and tensorflow 2.21 brings keras 3.15.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "keras==3.15.1",
    "tensorflow-datasets==4.9.10",
    "importlib_resources>=6",  # tensorflow-datasets 4.9.10 imports it on Python 3.11
    "absl-py>=2.1,<3",
    "gin-config==0.5.0",
    "tensorboard==2.21.0",  # tf.summary needs it; TensorFlow 2.21 no longer installs it
    "matplotlib>=3.7,<4",  # draws a run's learning curves to curves.png (plm_tf.evaluation.curves, Agg backend)

    "sentencepiece==0.2.3",  # trains ALBERT's SentencePiece vocab (scripts/build_vocab.py)
    # Reads and writes Hugging Face *.safetensors without pickle (plm_tf.convert); the
    # maintained reference reader is safer than a hand-written parser.
    "safetensors>=0.4,<1",
]

EXTRAS_REQUIRE = {
    # `tokenizers` is the reference byte-level BPE the tests compare plm_tf's in-graph BPE with.
    "test": ["pytest>=8", "tokenizers>=0.19,<1"],
    # Parity tests against the PyTorch reference implementation (CPU torch on these machines).
    "hf": ["torch==2.13.0", "transformers>=4.44,<5"],
}

setuptools.setup(
    name="plm_tf",
    version="0.1.0",
    description="TensorFlow 2 / Keras 3 reimplementation of RoBERTa, ALBERT and ELECTRA pretraining",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # gin/ sits at the top of the repository and is installed as plm_tf/gin (plm_tf.gin_config finds both).
    packages=setuptools.find_packages(include=["plm_tf", "plm_tf.*"]) + ["plm_tf.gin"],
    package_dir={"plm_tf.gin": "gin"},
    package_data={"plm_tf": ["assets/*", "assets/**/*"], "plm_tf.gin": ["*.gin", "**/*.gin"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
