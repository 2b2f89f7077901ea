"""The lifeline (`compare.lifeline`) for Dask: a worker plugin that ties each worker process of a LocalCluster
to hbench's main process, their parent, including workers started later to replace a restarted one. Its own
module, so that the local pool's workers never import distributed."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from compare.lifeline import tie_to_parent


class LifelinePlugin(WorkerPlugin):
    name = "hbench-lifeline"

    def __init__(self, parent: int | None = None) -> None:
        self.parent = parent  # the pid of the workers' parent (a LocalCluster's: this process); None: their own

    def setup(self, worker) -> None:
        tie_to_parent(self.parent)
