from carrier_sla.cli.main import main

raise SystemExit(main())
