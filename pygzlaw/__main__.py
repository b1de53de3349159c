import sys

from pygzlaw.cli import main

sys.exit(main())
