"""Named data scenarios: each module of this package with a ``run(context)`` function is one.

The infrastructure lives beside them: :mod:`scenarios.registry` finds and runs scenarios,
:mod:`scenarios.factories` holds the factory-boy factories (bound to a session through
:mod:`scenarios.binding`), :mod:`scenarios.emails` the shape of generated emails,
:mod:`scenarios.loading` the fast COPY path, :mod:`scenarios.cli` the ``scenario-run`` command
and :mod:`scenarios.testing` the pytest helpers.
"""

from pkgutil import extend_path

# A `scenarios/` folder elsewhere on sys.path adds its modules to this package (see registry).
__path__ = extend_path(__path__, __name__)
