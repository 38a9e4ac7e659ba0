"""The official google-genai Python SDK against the gateway's native routes (FakeGemini upstream).

Run by gatewayd's integration test `sdk::google_genai_python_sdk`, which sets GATEWAY_URL and GATEWAY_TOKEN.
"""

import os
import unittest

from google import genai
from google.genai import errors, types

URL = os.environ["GATEWAY_URL"]
TOKEN = os.environ["GATEWAY_TOKEN"]
MODEL = "gemini-2.5-flash"


def make_client(api_version="v1beta", token=TOKEN):
    return genai.Client(api_key=token, http_options=types.HttpOptions(base_url=URL, api_version=api_version))


# Held for the whole run: a Client closes its HTTP connection pool when garbage-collected.
CLIENTS = {"v1beta": make_client(), "v1": make_client("v1"), "bad": make_client(token="wrong-token")}


def client(which="v1beta"):
    return CLIENTS[which]


class Native(unittest.TestCase):
    def test_generate(self):
        r = client().models.generate_content(model=MODEL, contents="Hello")
        self.assertEqual(r.text, "Hello from the fake.")
        self.assertEqual(r.usage_metadata.prompt_token_count, 7)

    def test_generate_on_v1(self):
        r = client("v1").models.generate_content(model=MODEL, contents="Hello")
        self.assertEqual(r.text, "Hello from the fake.")

    def test_stream(self):
        chunks = list(client().models.generate_content_stream(model=MODEL, contents="Hello"))
        self.assertEqual("".join(c.text or "" for c in chunks), "Hello there")
        self.assertEqual(chunks[-1].usage_metadata.candidates_token_count, 3)

    def test_count_tokens(self):
        r = client().models.count_tokens(model=MODEL, contents="Hello")
        self.assertEqual(r.total_tokens, 7)

    def test_embed(self):
        r = client().models.embed_content(model="text-embedding-004", contents=["a", "b"])
        self.assertEqual(len(r.embeddings), 2)
        self.assertEqual(r.embeddings[1].values, [1.0, 0.5, 0.25])

    def test_models(self):
        names = [m.name for m in client().models.list()]
        self.assertIn("models/gemini-2.5-flash", names)
        self.assertEqual(client().models.get(model="gemini-2.5-pro").name, "models/gemini-2.5-pro")

    def test_bad_token(self):
        with self.assertRaises(errors.ClientError) as ctx:
            client("bad").models.generate_content(model=MODEL, contents="Hello")
        self.assertEqual(ctx.exception.code, 401)


class Files(unittest.TestCase):
    """Uploads go through the gateway's resumable relay; the file is pinned to its key (the fake
    refuses a file to any other key, and the pool has two)."""

    def test_upload_get_list_use_delete(self):
        import tempfile

        data = b"line of notes\n" * 20000  # 280 KB
        with tempfile.NamedTemporaryFile(suffix=".txt") as f:
            f.write(data)
            f.flush()
            up = client().files.upload(file=f.name, config=types.UploadFileConfig(mime_type="text/plain"))
        self.assertTrue(up.name.startswith("files/"))
        self.assertEqual(up.size_bytes, len(data))
        for _ in range(3):  # round-robin would move some of these to the other key
            got = client().files.get(name=up.name)
            self.assertEqual(got.name, up.name)
            r = client().models.generate_content(model=MODEL, contents=[up, "Summarise the notes."])
            self.assertEqual(r.text, "Hello from the fake.")
        # Downloaded by name (the SDK downloads only what the API generated when given a File).
        self.assertEqual(client().files.download(file=up.name), data)
        names = [f.name for f in client().files.list()]
        self.assertIn(up.name, names)
        # A cache over the file, then generations that name it: all on the file's key.
        cache = client().caches.create(
            model=MODEL,
            config=types.CreateCachedContentConfig(contents=[up], display_name="notes", ttl="600s"),
        )
        self.assertTrue(cache.name.startswith("cachedContents/"))
        for _ in range(3):
            r = client().models.generate_content(
                model=MODEL, contents="And?", config=types.GenerateContentConfig(cached_content=cache.name)
            )
            self.assertEqual(r.text, "Hello from the fake.")
        self.assertEqual(client().caches.get(name=cache.name).name, cache.name)
        self.assertIn(cache.name, [c.name for c in client().caches.list()])
        client().caches.delete(name=cache.name)
        with self.assertRaises(errors.ClientError) as e:
            client("bad").files.get(name=up.name)
        self.assertEqual(e.exception.code, 401)
        client().files.delete(name=up.name)
        with self.assertRaises(errors.ClientError) as e:
            client().files.get(name=up.name)
        self.assertEqual(e.exception.code, 404)


class Batches(unittest.TestCase):
    """A batch is created on whichever key answers, then read, listed, cancelled and deleted
    through that key only (the fake shows a batch to no other key)."""

    def test_create_get_list_cancel_delete(self):
        src = [{"contents": [{"parts": [{"text": "Hello"}], "role": "user"}]}]
        job = client().batches.create(model=MODEL, src=src, config=types.CreateBatchJobConfig(display_name="job"))
        self.assertTrue(job.name.startswith("batches/"), job.name)
        for _ in range(3):  # round-robin would move some of these to the other key
            got = client().batches.get(name=job.name)
            self.assertEqual(got.name, job.name)
            self.assertEqual(got.state, types.JobState.JOB_STATE_SUCCEEDED)
        self.assertIn(job.name, [b.name for b in client().batches.list()])
        client().batches.cancel(name=job.name)
        client().batches.delete(name=job.name)
        with self.assertRaises(errors.ClientError) as e:
            client().batches.get(name=job.name)
        self.assertEqual(e.exception.code, 404)


class Operations(unittest.TestCase):
    """A Veo operation, polled with the SDK on the key that made it, and its video downloaded
    with the SDK from that key. (google-genai 3.6.1 offers generate_videos and generate_images in
    Vertex mode only, so the operation is started over plain HTTP, as Google's curl docs do.)"""

    def test_poll_and_download_a_video(self):
        import json
        import urllib.request

        req = urllib.request.Request(
            f"{URL}/v1beta/models/veo-3.0-generate-001:predictLongRunning",
            data=json.dumps({"instances": [{"prompt": "a cat"}]}).encode(),
            headers={"x-goog-api-key": TOKEN, "content-type": "application/json"},
        )
        with urllib.request.urlopen(req) as res:
            name = json.load(res)["name"]
        for _ in range(3):  # round-robin would move some of these to the other key
            op = client().operations.get(types.GenerateVideosOperation(name=name))
            self.assertTrue(op.done)
        video = op.response.generated_videos[0]
        data = client().files.download(file=video)
        self.assertTrue(data.endswith(b"fake video"), data)


class Interactions(unittest.TestCase):
    """The Interactions API: each interaction pinned to the key that created it, so a next turn
    (`previous_interaction_id`) and every read find it (the fake shows it to no other key)."""

    def test_create_continue_get_delete(self):
        first = client().interactions.create(model=MODEL, input="Hello")
        self.assertEqual(first.status, "completed")
        self.assertEqual(first.output_text, "Hello from the interaction")
        previous = first.id
        for _ in range(3):
            turn = client().interactions.create(model=MODEL, input="And?", previous_interaction_id=previous)
            self.assertEqual(turn.output_text, f"Continuing {previous}")
            previous = turn.id
            self.assertEqual(client().interactions.get(first.id).id, first.id)
        client().interactions.delete(first.id)
        with self.assertRaises(Exception) as e:
            client().interactions.get(first.id)
        self.assertIn("404", str(e.exception))

    def test_stream_then_resume(self):
        events = list(client().interactions.create(model=MODEL, input="Hello", stream=True))
        kinds = [e.event_type for e in events]
        self.assertEqual(kinds[0], "interaction.created")
        self.assertEqual(kinds[-1], "interaction.completed")
        text = "".join(e.delta.text for e in events if e.event_type == "step.delta")
        self.assertEqual(text, "Hello from the interaction")
        interaction_id = events[0].interaction.id
        resumed = list(client().interactions.get(interaction_id, stream=True, last_event_id="e2"))
        self.assertEqual(resumed[-1].event_type, "interaction.completed")

    def test_on_v1(self):
        first = client("v1").interactions.create(model=MODEL, input="Hello")
        turn = client("v1").interactions.create(model=MODEL, input="And?", previous_interaction_id=first.id)
        self.assertEqual(turn.output_text, f"Continuing {first.id}")
        self.assertEqual(client("v1").interactions.get(first.id).id, first.id)

    def test_background_and_cancel(self):
        run = client().interactions.create(model=MODEL, input="Think long", background=True)
        self.assertEqual(run.status, "in_progress")
        self.assertEqual(client().interactions.cancel(run.id).status, "cancelled")


if __name__ == "__main__":
    unittest.main()
