from zkserver.cli import main

raise SystemExit(main())
