"""The evaluation tab of a finished tiny search on the real platform (tests/conftest.py remote_run): the sample
predictions the evaluate stage wrote are shown, the PR panel is drawn or says why not, a tile uploaded in the
predict panel comes back as an overlay, and "Download model" gives an ONNX file that onnxruntime runs to the same
probabilities as the run's PyTorch network."""
from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from nas_core.inference import load_model
from tests.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_samples_predict_and_download_in_the_evaluation_tab(page, platform, remote_run, artifacts_dir, tmp_path):
    run_id, token = remote_run["run_id"], remote_run["token"]
    http = httpx.Client(base_url=f"{platform['url']}/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"})
    run = httpx.get(f"{platform['url']}/api/runs/{run_id}", headers=http.headers).json()
    assert run["status"] == "succeeded", run
    run_dir = run["run_dir"]
    index = http.get("/artifacts/samples/index.json").json()
    metrics = http.get("/artifacts/metrics.json").json()
    assert index["samples"], index

    sign_in(page, platform["url"], token, f"#/runs/{run_id}")
    page.get_by_role("button", name="Evaluation").click()
    # Every sample the evaluate stage wrote, loaded (an image that failed has no natural width).
    page.wait_for_function("""(n) => { const imgs = document.querySelectorAll('#eval-samples img');
        return imgs.length === n && [...imgs].every((i) => i.complete && i.naturalWidth > 0); }""",
                           arg=len(index["samples"]), timeout=60000)
    if page.locator("#eval-pr").count() == 0:  # no curve to draw: the panel says why, in the evaluate stage's words
        note = page.locator("#pr-empty")
        assert note.is_visible() and note.inner_text().startswith("no precision-recall curve: ")
        assert metrics["pr_empty_reason"] and metrics["pr_empty_reason"] in note.inner_text()

    # The predict panel: a tile of the network's size, uploaded, comes back drawn at that size.
    predictor = load_model(run_dir)
    t = predictor.tile_size
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (t, t, 3), dtype=np.uint8)).save(buf, format="PNG")
    page.set_input_files("#predict-files", files=[{"name": "tile.png", "mimeType": "image/png", "buffer": buf.getvalue()}])
    page.click("#predict-upload")
    page.wait_for_function("() => { const i = document.querySelector('#predict-out img'); return i && i.naturalWidth > 0; }",
                           timeout=60000)
    assert page.evaluate("document.querySelector('#predict-out img').naturalWidth") == t
    shot(page, artifacts_dir, "evaluation-tab")

    with page.expect_download(timeout=120000) as got:
        page.click("#model-download button[data-format=onnx]")
    path = tmp_path / got.value.suggested_filename
    got.value.save_as(path)
    assert path.suffix == ".onnx"
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).random((2, predictor.in_channels, t, t), dtype=np.float32)
    (probs,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(probs, predictor.predict_tiles(x.transpose(0, 2, 3, 1)), atol=1e-4)
    assert page.console_errors == []


def test_an_empty_pr_curve_is_said_in_words(page, ui_api, ui_stack):
    """A test split where the network found no object: the curve has no point, and the tab says why (the evaluate
    stage's pr_empty_reason) instead of drawing blank axes."""
    run_id = ui_api.launch(ui_api.experiment("empty pr")["id"])["run"]["id"]
    reason = "no predicted objects (the network predicts only background)"
    ui_api.ingest(run_id, [{"seq": 1, "time": 1.0, "kind": "evaluation", "payload": {
        "stage": "evaluate", "split": "test", "miou": 0.49, "iou": [0.98, 0.0], "pr_empty_reason": reason,
        "curves": {"1": {"0.5": {"precision": [], "recall": [], "ap": 0.0, "num_pred": 0, "num_gt": 3}}}}}])
    sign_in(page, ui_stack["url"], ui_api.token, f"#/runs/{run_id}")
    page.get_by_role("button", name="Evaluation").click()
    page.wait_for_selector("#pr-empty:not([hidden])", timeout=20000)
    assert page.locator("#pr-empty").inner_text() == f"no precision-recall curve: {reason}"
    assert page.locator("#eval-pr").count() == 0
    assert page.console_errors == []
