"""`python with_tools.py ARGS...`: the ascend-build command line with the test tree's `tools`
component (tests/unit/tools_component.py) registered first, as a stack that lives outside the
package would be: no file of the package knows it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

import tools_component  # noqa: E402

from ascend_build.__main__ import main  # noqa: E402
from ascend_build.components import registry  # noqa: E402

registry.register(tools_component.COMPONENT)
main()
