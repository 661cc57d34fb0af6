from zkserver.shell.main import main

raise SystemExit(main())
