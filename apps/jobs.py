"""Long work (classify, generate, score) in background threads, so a page never blocks and several tabs can run."""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from seqmamba.errors import UserFacingError


@dataclass
class Job:
    """One piece of background work: its folder, state and result, read by the page's polling."""

    id: str
    kind: str
    folder: Path
    state: str = "running"  # running | done | failed
    message: str = "started"
    result: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        """What /jobs/ID answers."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "message": self.message}


class JobBoard:
    """The app's jobs by id; each runs `work(job)` in its own thread, output under RUNS/app/KIND/ID/."""

    def __init__(self, app_root: Path) -> None:
        self.app_root = app_root
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def new_job(self, kind: str) -> Job:
        """A new job with its own fresh folder (the upload goes there before the work starts)."""
        job_id = uuid.uuid4().hex[:12]
        job = Job(job_id, kind, self.app_root / kind / job_id)
        job.folder.mkdir(parents=True)
        with self.lock:
            self.jobs[job_id] = job
        return job

    def start(self, job: Job, work: Callable[[Job], dict]) -> Job:
        """Run `work` in the background; a user-facing error becomes the job's one-line message."""

        def run() -> None:
            try:
                job.result = work(job)
                job.state, job.message = "done", "done"
            except UserFacingError as error:
                job.state, job.message = "failed", str(error)
            except SystemExit:  # a command's parser refused the settings (it printed why)
                job.state, job.message = "failed", "the command refused these settings"
            except Exception as error:  # noqa: BLE001  the page must say something, the server must stay up
                traceback.print_exc()
                job.state, job.message = "failed", f"{type(error).__name__}: {error}"

        threading.Thread(target=run, name=f"job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if this server started it."""
        with self.lock:
            return self.jobs.get(job_id)
