import sys

from fourm.cli import main

sys.exit(main())
