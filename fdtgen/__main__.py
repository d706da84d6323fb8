import sys

from fdtgen.cli import main

sys.exit(main())
