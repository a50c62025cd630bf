"""The selective int8 quantiser of `hacnn_tf.export.tflite`: the bytes of TensorFlow's QuantizationDebugger path
(calibrate, then quantise with nodes left float), without its numeric-verify model and deprecated interpreter."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from hacnn_tf.export.tflite import _quantize


def test_quantize_gives_the_debugger_bytes_without_the_deprecated_interpreter():
    inputs = keras.Input((16, 8, 3))
    hidden = keras.layers.Conv2D(4, 3, name="conv_a")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv_b")(hidden)))
    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (1, 16, 8, 3)).astype("float32") for _ in range(8)]

    def converter():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter

    from ai_edge_litert.interpreter import Interpreter

    names = [detail["name"] for detail in Interpreter(model_content=converter().convert()).get_tensor_details()]
    float_nodes = [name for name in names if "conv_b" in name]  # as _float_island_nodes picks them
    assert float_nodes
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes)
    expected = tf.lite.experimental.QuantizationDebugger(
        converter=converter(), debug_dataset=lambda: ([image] for image in images[:1]), debug_options=options
    ).get_nondebug_quantized_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = _quantize(converter(), float_nodes)
    assert quantized == expected
    assert not [w for w in caught if "tf.lite.Interpreter is deprecated" in str(w.message)]
    everything = _quantize(converter(), [])
    assert everything != quantized  # the float node made a difference: the comparison above can fail
