from carrier_sla.cli import main

raise SystemExit(main())
