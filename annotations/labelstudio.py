"""The one adapter around a Label Studio server (the only module that imports ``label_studio_sdk``).

The server and key come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` (a personal access token
or a legacy token; the key is never printed or logged). Projects are found by title, so ``init`` can be
run again to update one. Tasks carry a stable ``key``, so pushing the same images twice adds nothing.
Exports are snapshot exports taken page by page (a Data Manager view per range of task ids), so a
project of any size is pulled without one request timing out.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plastic_hotspots.annotations.errors import ExportError, ServerError

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    """How a labelling project is set up.

    Attributes:
        title: The project's title (the key that ``init`` finds it by).
        label_config: The labelling interface (XML).
        instructions: Shown to volunteers before they start (HTML).
        overlap: How many volunteers label each task.
    """

    title: str
    label_config: str
    instructions: str
    overlap: int = 3


def _validation_words(errors: object) -> str:
    """Label Studio's validation errors as ``field: words; ...`` (``{"title": ["Ensure ..."]}``)."""
    if isinstance(errors, Mapping):
        parts = []
        for field, words in errors.items():
            said = " ".join(str(w) for w in words) if isinstance(words, list) else str(words)
            parts.append(said if field == "non_field_errors" else f"{field}: {said}")
        return "; ".join(parts)
    if isinstance(errors, list):
        return " ".join(str(w) for w in errors)
    return str(errors or "")


def _api_error(exc: Exception, doing: str) -> ServerError:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    detail = ""
    if isinstance(body, Mapping):
        detail = str(body.get("detail") or body.get("validation_errors") or "")
    if status in (401, 403):
        return ServerError(
            f"Label Studio refused the key while {doing} (HTTP {status})",
            hint=f"set {KEY_ENV} to an access token from Label Studio's Account & Settings page",
        )
    if status == 400 and isinstance(body, Mapping) and body.get("validation_errors"):
        return ServerError(
            f"Label Studio refused a value while {doing}: {_validation_words(body['validation_errors'])}",
            hint="correct the value Label Studio names and run the command again",
        )
    return ServerError(
        f"Label Studio failed while {doing}: HTTP {status} {detail}".strip(), hint="see the server log"
    )


class LabelStudioClient:
    """A connection to one Label Studio server.

    Raises:
        ServerError: No URL or key in the environment, the server cannot be reached, or the key is refused.
    """

    def __init__(
        self, url: str | None = None, api_key: str | None = None, *, timeout_s: float = 120.0
    ) -> None:
        url = url or os.environ.get(URL_ENV)
        api_key = api_key or os.environ.get(KEY_ENV)
        if not url:
            raise ServerError(
                f"no Label Studio server given: {URL_ENV} is not set", hint=f"export {URL_ENV}=http://..."
            )
        if not api_key:
            raise ServerError(
                f"no Label Studio access token: {KEY_ENV} is not set",
                hint=f"copy a token from Label Studio (Account & Settings) into {KEY_ENV}",
            )
        from label_studio_sdk.client import LabelStudio

        self.url = url.rstrip("/")
        self._ls: Any = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout_s)  # type: ignore[no-untyped-call]
        try:
            self.user = self._ls.users.whoami()
        except Exception as exc:
            if getattr(exc, "status_code", None) is None:
                raise ServerError(
                    f"cannot reach Label Studio at {self.url} ({type(exc).__name__})",
                    hint="check the URL and that the server is running",
                ) from exc
            raise _api_error(exc, "checking the key") from exc

    # ---------------------------------------------------------------------------------------- projects

    def find_project(self, title: str) -> int | None:
        """The id of the project with this title, if any."""
        try:
            for project in self._ls.projects.list(title=title):
                if project.title == title:
                    return int(project.id)
        except Exception as exc:
            raise _api_error(exc, "listing projects") from exc
        return None

    def init_project(self, settings: ProjectSettings) -> tuple[int, bool]:
        """Create the project, or update the one with the same title; returns ``(id, created)``."""
        fields: dict[str, Any] = {
            "label_config": settings.label_config,
            "expert_instruction": settings.instructions,
            "show_instruction": True,
            "maximum_annotations": settings.overlap,
            "show_skip_button": True,
            "enable_empty_annotation": True,
            "show_collab_predictions": True,
            "sampling": "Sequential sampling",
        }
        existing = self.find_project(settings.title)
        try:
            if existing is None:
                project = self._ls.projects.create(title=settings.title, **fields)
                return int(project.id), True
            self._ls.projects.update(id=existing, **fields)
        except Exception as exc:
            raise _api_error(exc, f"setting up project {settings.title!r}") from exc
        return existing, False

    def use_uncertainty_sampling(self, project: int, model_version: str) -> None:
        """Serve volunteers the tasks whose ``model_version`` prediction has the lowest score first."""
        try:
            self._ls.projects.update(id=project, sampling="Uncertainty sampling", model_version=model_version)
        except Exception as exc:
            raise _api_error(exc, "switching the queue to uncertainty sampling") from exc

    def user_emails(self) -> dict[int, str]:
        """User id -> email, for naming annotators in exports."""
        try:
            return {int(u.id): str(u.email) for u in self._ls.users.list()}
        except Exception as exc:
            raise _api_error(exc, "listing users") from exc

    def add_local_storage(self, project: int, folder: Path) -> None:
        """Register a Local Files storage covering ``folder`` (needed for ``/data/local-files/`` URLs)."""
        path = str(Path(folder).resolve())
        try:
            for storage in self._ls.import_storage.local.list(project=project):
                if storage.path == path:
                    return
            self._ls.import_storage.local.create(
                project=project, path=path, title=f"photos {path}", use_blob_urls=False
            )
        except Exception as exc:
            raise _api_error(exc, f"registering local storage {path}") from exc

    # ------------------------------------------------------------------------------------------- tasks

    def task_ids_and_keys(self, project: int, page_size: int = 1000) -> dict[str, int]:
        """Task ``key`` -> Label Studio task id, for every task of the project."""
        out: dict[str, int] = {}
        page = 1
        while True:
            try:
                result = self._ls.tasks.list(
                    project=project, page=page, page_size=page_size, fields="task_only"
                )
                batch = list(result.items) if hasattr(result, "items") else list(result)
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404 and page > 1:
                    break  # past the last page
                raise _api_error(exc, "listing tasks") from exc
            for task in batch:
                data = task.data or {}
                out[str(data.get("key") or task.id)] = int(task.id)
            if len(batch) < page_size:
                break
            page += 1
        return out

    def import_tasks(self, project: int, tasks: Sequence[Mapping[str, Any]], batch: int = 500) -> list[int]:
        """Import tasks (``{"data": ..., "predictions": ...}``) in batches; returns their ids."""
        ids: list[int] = []
        for start in range(0, len(tasks), batch):
            chunk = [dict(t) for t in tasks[start : start + batch]]
            try:
                result = self._ls.projects.import_tasks(id=project, request=chunk, return_task_ids=True)
            except Exception as exc:
                raise _api_error(exc, "importing tasks") from exc
            ids.extend(int(i) for i in (result.task_ids or []))
        return ids

    def add_prediction(
        self, task: int, result: list[dict[str, Any]], score: float, model_version: str
    ) -> None:
        """Attach a model's boxes to a task as a pre-annotation."""
        try:
            self._ls.predictions.create(task=task, result=result, score=score, model_version=model_version)
        except Exception as exc:
            raise _api_error(exc, f"adding a prediction to task {task}") from exc

    def annotate(self, task: int, result: list[dict[str, Any]], completed_by: int | None = None) -> int:
        """Submit an annotation to a task (as ``completed_by`` when the key may act for others)."""
        extra = {"completed_by": completed_by} if completed_by is not None else {}
        try:
            return int(self._ls.annotations.create(id=task, result=result, **extra).id)
        except Exception as exc:
            raise _api_error(exc, f"annotating task {task}") from exc

    def ensure_user(self, email: str) -> int:
        """The id of the user with this email, created when missing (for volunteers and tests)."""
        return self.add_user(email)[0]

    def add_user(self, email: str) -> tuple[int, bool]:
        """Add an account (no password, no admin rights) to the key's organization; ``(id, created)``.

        An account that already exists is left as it is.
        """
        try:
            for user in self._ls.users.list():
                if str(user.email).lower() == email.lower():
                    return int(user.id), False
            made = self._ls.users.create(email=email, username=email.split("@", maxsplit=1)[0])
            return int(made.id), True
        except Exception as exc:
            raise _api_error(exc, f"creating user {email}") from exc

    # ------------------------------------------------------------------------------------------ export

    def _snapshot(self, project: int, view: int, timeout_s: float) -> list[dict[str, Any]]:
        exports = self._ls.projects.exports
        made = exports.create(id=project, title="plastic-hotspots pull", task_filter_options={"view": view})
        deadline = time.monotonic() + timeout_s
        while True:
            status = exports.get(id=project, export_pk=made.id).status
            if status == "completed":
                break
            if status == "failed":
                raise ExportError(f"Label Studio could not make export {made.id}", hint="see the server log")
            if time.monotonic() > deadline:
                raise ExportError(
                    f"export {made.id} was not ready after {timeout_s:.0f} s",
                    hint="pull with a smaller --page-size",
                )
            time.sleep(0.5)
        raw = b"".join(exports.download(id=project, export_pk=made.id, export_type="JSON"))
        exports.delete(id=project, export_pk=made.id)
        try:
            tasks = json.loads(raw)
        except ValueError as exc:
            raise ExportError(f"export {made.id} is not JSON ({exc})", hint="pull again") from exc
        if not isinstance(tasks, list):
            raise ExportError(f"export {made.id} is not a list of tasks", hint="pull again")
        return tasks

    def export_pages(
        self, project: int, page_size: int = 1000, timeout_s: float = 600.0
    ) -> Iterator[list[dict[str, Any]]]:
        """All tasks with their annotations, a snapshot export per page of ``page_size`` task ids."""
        ids = sorted(self.task_ids_and_keys(project).values())
        for start in range(0, len(ids), page_size):
            lo, hi = ids[start], ids[min(start + page_size, len(ids)) - 1]
            data = {
                "title": f"pull {lo}-{hi}",
                "filters": {
                    "conjunction": "and",
                    "items": [
                        {
                            "filter": "filter:tasks:id",
                            "operator": "in",
                            "type": "Number",
                            "value": {"min": lo, "max": hi},
                        }
                    ],
                },
            }
            try:
                view = self._ls.views.create(project=project, data=data)
            except Exception as exc:
                raise _api_error(exc, "creating an export view") from exc
            try:
                yield self._snapshot(project, int(view.id), timeout_s)
            except ExportError:
                raise
            except Exception as exc:
                raise _api_error(exc, f"exporting tasks {lo}-{hi}") from exc
            finally:
                with contextlib.suppress(Exception):  # a leftover view is harmless
                    self._ls.views.delete(id=str(view.id))

    # ------------------------------------------------------------------------------------- ML backend

    def connect_backend(self, project: int, url: str, token: str, title: str = "plastic-hotspots") -> int:
        """Connect an ML backend to the project: predictions when a task opens, webhooks on annotations.

        The backend is reached with HTTP basic authentication (user ``label-studio``, its token), and so is
        the webhook Label Studio makes for it. Returns the ML backend's id; connecting again updates it.
        """
        from plastic_hotspots.annotations.backend import BACKEND_USER, basic_auth

        auth = {"auth_method": "BASIC_AUTH", "basic_auth_user": BACKEND_USER, "basic_auth_pass": token}
        url = url.rstrip("/")
        try:
            existing = [m for m in self._ls.ml.list(project=project) if str(m.url).rstrip("/") == url]
            if existing:
                backend = int(existing[0].id)
                self._ls.ml.update(id=backend, is_interactive=True, auto_update=True, title=title, **auth)
            else:
                made = self._ls.ml.create(
                    project=project, url=url, title=title, is_interactive=True, auto_update=True, **auth
                )
                backend = int(made.id)
            for hook in self._ls.webhooks.list(project=project):
                if str(hook.url).rstrip("/") == url + "/webhook":
                    self._ls.webhooks.update(id=hook.id, headers={"Authorization": basic_auth(token)})
            self._ls.projects.update(  # a live model is named by its backend's title
                id=project, evaluate_predictions_automatically=True, show_collab_predictions=True,
                model_version=title, sampling="Uncertainty sampling",
            )  # fmt: skip
        except Exception as exc:
            raise _api_error(exc, f"connecting the ML backend at {url}") from exc
        return backend

    def backend_state(self, backend: int) -> tuple[str, str | None]:
        """The ML backend's state as Label Studio sees it (``CO`` connected, ``ER`` error, ...) and error."""
        try:
            made = self._ls.ml.get(id=backend)
        except Exception as exc:
            raise _api_error(exc, "reading the ML backend's state") from exc
        return str(made.state), made.error_message

    def task(self, task: int) -> dict[str, Any]:
        """One task as Label Studio serves it to a volunteer who opens it (predictions included)."""
        try:
            return dict(self._ls.tasks.get(id=str(task)).dict())
        except Exception as exc:
            raise _api_error(exc, f"reading task {task}") from exc
