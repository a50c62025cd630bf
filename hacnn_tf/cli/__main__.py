from hacnn_tf.cli import main

main()
