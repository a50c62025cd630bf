from hacnn_tf.cli import main

raise SystemExit(main())
