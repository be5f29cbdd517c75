import sys

from stockpipe.cli import main

sys.exit(main())
