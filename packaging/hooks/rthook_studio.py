"""PyInstaller runtime hook: runs before the studio is imported in the frozen app.

The bundle carries the demo model, demo data and model catalog in `<bundle>/_internal/resources`;
`studio.core.paths.resources_dir()` finds them through STUDIO_RESOURCES. The variable is also
inherited by the training worker (the same executable, started with `-m`).
"""

import os
import sys

_bundle = getattr(sys, "_MEIPASS", None)
if _bundle and not os.environ.get("STUDIO_RESOURCES"):
    os.environ["STUDIO_RESOURCES"] = os.path.join(_bundle, "resources")
