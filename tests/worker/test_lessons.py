"""The training lane: below rendering, in chunks, with progress, cancel and bounds; and its HTTP route."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.fakes.serving import sse
from tests.worker.test_teach import PICTURES, TOKEN
from worker.errors import JobCancelled, QueueBusy
from worker.lessons import LessonLane
from worker.protocol import TeachResponse, TeachSettingsUsed
from worker.scheduler import Job, Progress, Scheduler
from worker.settings import TeachSettings
from worker.teach import read_embedding


@dataclass
class FakePlan:
    steps: int
    max_seconds: float = 1000.0


class FakeTrainer:
    """Counts steps; each chunk is logged in the shared timeline; `seconds` advances 1 s a step.

    A chunk waits for `gate` (open unless a test closes it) after telling `running`.
    """

    def __init__(self, name: str, timeline: list[str], gate: threading.Event, running: threading.Event) -> None:
        self.name, self.timeline, self.gate, self.running = name, timeline, gate, running
        self.step = 0
        self.seconds = 0.0

    @property
    def loss(self) -> float | None:
        return 1.0 / self.step if self.step else None

    def run(self, steps: int) -> None:
        self.running.set()
        self.gate.wait(10)
        self.timeline.append(f"train {self.name} {self.step + 1}-{self.step + steps}")
        self.step += steps
        self.seconds += steps

    def result(self, stopped_by: str) -> TeachResponse:
        used = TeachSettingsUsed(
            model="tiny", family="sdxl", init_word="object", steps=self.step, steps_asked=self.step,
            learning_rate=0.005, seed=0, width=64, height=64, images=3, stopped_by=stopped_by,  # type: ignore[arg-type]
        )  # fmt: skip
        return TeachResponse(token=TOKEN, embedding="", loss=self.loss, settings=used)


class FakeTeacher:
    def __init__(self, timeline: list[str]) -> None:
        self.timeline = timeline
        self.gate, self.running = threading.Event(), threading.Event()
        self.gate.set()

    def trainer(self, plan: Any) -> FakeTrainer:
        return FakeTrainer(str(plan.steps), self.timeline, self.gate, self.running)


class Renderer:
    """A render runner that logs its batches in the same timeline (and can hold the first one)."""

    def __init__(self, timeline: list[str]) -> None:
        self.timeline = timeline

    def __call__(self, jobs: Sequence[Job[str]], report: Callable[[Job[str], Progress], None]) -> list[str]:
        self.timeline.append("render " + ",".join(j.id for j in jobs))
        return [j.id for j in jobs]


def lane_and_scheduler(
    timeline: list[str], teacher: FakeTeacher | None = None, **settings: Any
) -> tuple[LessonLane, Scheduler[str]]:
    scheduler: Scheduler[str] = Scheduler(Renderer(timeline), ThreadPoolExecutor(1), max_batch=1, batch_window_s=0)
    teacher = teacher or FakeTeacher(timeline)
    lane = LessonLane(teacher, TeachSettings(chunk_steps=2, **settings), wake=scheduler.wake)
    scheduler.set_background(lane)
    return lane, scheduler


def lesson(job_id: str, steps: int, *, max_seconds: float = 1000.0) -> Job[TeachResponse]:
    return Job(id=job_id, user="u", plan=FakePlan(steps, max_seconds), key=None, events=asyncio.Queue())


async def drained(job: Job[Any]) -> list[Progress]:
    events = []
    assert job.events is not None
    while not job.events.empty():
        events.append(job.events.get_nowait())
    return events


async def test_a_picture_asked_for_during_training_waits_for_one_chunk_at_most() -> None:
    timeline: list[str] = []
    teacher = FakeTeacher(timeline)
    teacher.gate.clear()
    lane, scheduler = lane_and_scheduler(timeline, teacher)
    scheduler.start()
    long = lane.submit(lesson("teach", 6))
    await asyncio.to_thread(teacher.running.wait, 10)  # the first chunk is on the render thread
    render = scheduler.submit(Job(id="pic", user="v", plan=None, key="k"))
    teacher.gate.set()
    assert await render.future == "pic"  # type: ignore[misc]
    result = await long.future  # type: ignore[misc]
    assert result.settings.steps == 6
    assert timeline.index("render pic") == 1  # right after the one chunk that was running
    assert [t for t in timeline if t.startswith("train")] == ["train 6 1-2", "train 6 3-4", "train 6 5-6"]
    events = await drained(long)
    assert [(e.kind, e.data.get("step"), e.data.get("loss")) for e in events] == [
        ("queued", None, None), ("started", None, None), ("step", 2, 0.5), ("step", 4, 0.25), ("step", 6, 1 / 6),
    ]  # fmt: skip
    assert events[0].data == {"job_id": "teach", "position": 1, "eta_s": 150.0}  # 300 default steps x 0.5 s guess
    assert [e.data["eta_s"] for e in events[2:]] == [4.0, 2.0, 0.0]  # 1 s a step, from the measured steps
    await scheduler.drain()


async def test_renders_queued_first_run_before_any_training() -> None:
    timeline: list[str] = []
    lane, scheduler = lane_and_scheduler(timeline)
    pictures = [scheduler.submit(Job(id=f"p{i}", user=f"u{i}", plan=None, key=f"k{i}")) for i in range(3)]
    taught = lane.submit(lesson("teach", 2))
    scheduler.start()
    await asyncio.gather(taught.future, *(p.future for p in pictures))  # type: ignore[arg-type]
    assert timeline == ["render p0", "render p1", "render p2", "train 2 1-2"]
    await scheduler.drain()


async def test_lessons_run_one_at_a_time_in_order_and_the_lane_is_bounded() -> None:
    timeline: list[str] = []
    lane, scheduler = lane_and_scheduler(timeline, max_queue=2)
    first, second = lane.submit(lesson("a", 2)), lane.submit(lesson("b", 4))
    with pytest.raises(QueueBusy):
        lane.submit(lesson("c", 2))
    assert lane.submit(lesson("a", 99)) is first  # the same id attaches: idempotent
    scheduler.start()
    await asyncio.gather(first.future, second.future)  # type: ignore[arg-type]
    assert timeline == ["train 2 1-2", "train 4 1-2", "train 4 3-4"]
    assert (await drained(second))[0].data["position"] == 2
    await scheduler.drain()


async def test_cancel_takes_a_waiting_lesson_out_and_stops_a_running_one_between_chunks() -> None:
    timeline: list[str] = []
    lane, scheduler = lane_and_scheduler(timeline)
    running, waiting = lane.submit(lesson("run", 1000)), lane.submit(lesson("wait", 2))
    assert lane.cancel("wait")
    with pytest.raises(JobCancelled):
        await waiting.future  # type: ignore[misc]
    scheduler.start()
    while len(timeline) < 2:
        await asyncio.sleep(0.001)
    assert lane.cancel("run")
    with pytest.raises(JobCancelled):
        await running.future  # type: ignore[misc]
    assert not lane.cancel("run") and not lane.pending()
    assert all(t.startswith("train 1000") for t in timeline) and len(timeline) < 1000 // 2
    await scheduler.drain()


async def test_the_time_bound_ends_a_lesson_with_what_it_learned() -> None:
    timeline: list[str] = []
    lane, scheduler = lane_and_scheduler(timeline)
    bounded = lane.submit(lesson("slow", 100, max_seconds=5))  # the fake takes 1 s a step
    scheduler.start()
    result = await bounded.future  # type: ignore[misc]
    assert (result.settings.steps, result.settings.stopped_by) == (6, "time")
    await scheduler.drain()


async def test_a_trainer_that_fails_fails_only_its_lesson() -> None:
    timeline: list[str] = []

    class Broken(FakeTeacher):
        def trainer(self, plan: Any) -> FakeTrainer:
            if plan.steps == 3:
                raise RuntimeError("boom")
            return super().trainer(plan)

    lane, scheduler = lane_and_scheduler(timeline, Broken(timeline))
    broken, fine = lane.submit(lesson("x", 3)), lane.submit(lesson("y", 2))
    scheduler.start()
    with pytest.raises(RuntimeError, match="boom"):
        await broken.future  # type: ignore[misc]
    assert (await fine.future).settings.steps == 2  # type: ignore[misc]
    assert (await scheduler.submit(Job(id="p", user="u", plan=None, key="k")).future) == "p"  # type: ignore[misc]
    await scheduler.drain()


# -- over HTTP, on the real worker with the tiny SDXL pipeline ---------------------------------------


def training_form(pictures: list[bytes], **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for n, data in enumerate(pictures):
        form.add_field("image[]", data, filename=f"p{n}.png", content_type="image/png")
    for key, value in {"token": TOKEN, "seed": "3", **fields}.items():
        form.add_field(key, value)
    return form


async def test_training_over_http_streams_steps_with_the_loss_then_the_word(worker_url: str) -> None:
    form = training_form(PICTURES, steps="6", stream="true", job_id="lesson-1", init_word="toy")
    async with aiohttp.ClientSession() as session, session.post(worker_url + "/v1/concepts/train", data=form) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        events = [event async for event in sse(resp)]
    kinds = [kind for kind, _ in events]
    assert kinds == ["queued", "started", "step", "step", "completed"]  # 4-step chunks: 4, then 6
    assert [data["step"] for kind, data in events if kind == "step"] == [4, 6]
    assert all(data["steps"] == 6 and data["loss"] > 0 for kind, data in events if kind == "step")
    done = TeachResponse.model_validate(events[-1][1])
    assert (done.token, done.job_id, done.settings.model, done.settings.family) == (TOKEN, "lesson-1", "tiny", "sdxl")
    assert (done.settings.steps, done.settings.images, done.settings.init_word) == (6, 3, "toy")
    assert sorted(read_embedding(base64.b64decode(done.embedding))) == ["clip_g", "clip_l"]


async def test_training_over_http_is_cancelled_by_its_job_id(worker_url: str) -> None:
    form = training_form(PICTURES, steps="1000", stream="true", job_id="lesson-2")
    async with aiohttp.ClientSession() as session:
        async with session.post(worker_url + "/v1/concepts/train", data=form) as resp:
            events: list[tuple[str, dict[str, Any]]] = []
            async for event, data in sse(resp):
                events.append((event, data))
                if event == "step" and len(events) == 3:
                    async with session.delete(worker_url + "/v1/concepts/jobs/lesson-2") as cancelled:
                        assert (cancelled.status, await cancelled.json()) == (
                            200, {"id": "lesson-2", "cancelled": True},
                        )  # fmt: skip
        async with session.delete(worker_url + "/v1/images/jobs/lesson-2") as gone:
            assert gone.status == 404
    assert events[-1] == (
        "error", {"error": {"message": "the job was cancelled", "type": "invalid_request_error", "code": "cancelled",
                            "param": "job_id"}},
    )  # fmt: skip
    assert max(data.get("step") or 0 for _, data in events) < 1000


@pytest.mark.parametrize(
    ("pictures", "fields", "message", "param"),
    [
        (PICTURES[:2], {}, "teaching a word takes 3 to 10 pictures; got 2", "image"),
        ([*PICTURES, b"GIF89a not really"], {}, "couldn't read that image (PNG, JPEG, WebP or GIF)", "image"),
        (PICTURES, {"token": "mascot"}, "token: String should match pattern '^<[a-z0-9][a-z0-9_-]{0,30}>$'", "token"),
    ],
)
async def test_bad_training_requests_are_refused_before_anything_queues(
    worker_url: str, pictures: list[bytes], fields: dict[str, str], message: str, param: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(worker_url + "/v1/concepts/train", data=training_form(pictures, **fields)) as resp,
    ):
        body = await resp.json()
    assert resp.status == 400
    assert (body["error"]["message"], body["error"]["param"]) == (message, param)
