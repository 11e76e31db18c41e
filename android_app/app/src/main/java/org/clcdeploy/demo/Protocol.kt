package org.clcdeploy.demo

/**
 * The harness-facing names of the headless benchmark. The Python side is
 * clcdeploy/bench/app_protocol.py; tests/test_app_android_project.py checks that both hold the same strings.
 */
object Protocol {
    const val EXTRA_MODEL_PATH = "model_path"
    const val EXTRA_RUNTIME = "runtime"
    const val EXTRA_ITERATIONS = "iterations"
    const val EXTRA_WARMUP = "warmup"
    const val EXTRA_THREADS = "threads"
    const val EXTRA_RUN_ID = "run_id"
    /** Int array (`--eia input_shape 1,3,224,224`): the artifact's input shape, NCHW for .pte, NHWC for .tflite. */
    const val EXTRA_INPUT_SHAPE = "input_shape"

    const val RUNTIME_PTE = "pte"
    const val RUNTIME_TFLITE = "tflite"

    /** Written into the app's files folder (context.filesDir), read with `run-as <pkg> cat files/<name>`. */
    const val RESULT_FILE = "benchmark_result.json"

    /** Logcat tag of the one-line summary. */
    const val LOG_TAG = "clcdeploy"

    const val DEFAULT_ITERATIONS = 10
    const val DEFAULT_WARMUP = 3 // the harness's default (clcdeploy bench --warmup)
}
