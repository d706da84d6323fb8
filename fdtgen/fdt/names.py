"""The two rules for node and property names: the DT spec's, and dtc's.

* ``SPEC_*``: the Devicetree Specification's "Node Names" and "Property
  Names" — 1 to 31 characters from its set. fdtgen writes only such names, and
  ``fdtgen verify`` holds any blob to them.
* ``DTC_*``: what dtc itself accepts without an error (checks.c: PROPNODECHARS
  for properties, NODECHARS plus node_name_format's single ``@`` for nodes), at
  any length. The strict parser reads every such name; any other could not be
  compiled back from DTS.
"""

from __future__ import annotations

import re

SPEC_NODE_CHARS = "A-Za-z0-9,._+-"
SPEC_PROP_CHARS = "A-Za-z0-9,._+?#-"
SPEC_NODE_NAME_RE = re.compile(f"[{SPEC_NODE_CHARS}]{{1,31}}(@[{SPEC_NODE_CHARS}]+)?")
SPEC_PROP_NAME_RE = re.compile(f"[{SPEC_PROP_CHARS}]{{1,31}}")

DTC_NAME_CHARS = "A-Za-z0-9,._+*#?-"
DTC_PROP_NAME_RE = re.compile(f"[{DTC_NAME_CHARS}]+")
DTC_NODE_NAME_RE = re.compile(f"[{DTC_NAME_CHARS}]+(@[{DTC_NAME_CHARS}]*)?")
