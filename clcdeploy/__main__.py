from clcdeploy.cli import main

raise SystemExit(main())
