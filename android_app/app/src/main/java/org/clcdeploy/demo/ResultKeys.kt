package org.clcdeploy.demo

/**
 * Every key of the benchmark result JSON, defined once. The schema is clcdeploy/bench/app_result.schema.json;
 * tests/test_app_android_project.py checks these names (and that ResultJson.kt writes only them) against it.
 */
object ResultKeys {
    const val SCHEMA_VERSION_VALUE = 1

    const val SCHEMA_VERSION = "schema_version"
    const val RUN_ID = "run_id"
    const val STATUS = "status"
    const val ERROR = "error"
    const val MODEL = "model"
    const val RUNTIME = "runtime"
    const val RUNTIME_LIBRARY = "runtime_library"
    const val THREADS = "threads"
    const val WARMUP = "warmup"
    const val ITERATIONS = "iterations"
    const val LOAD_MS = "load_ms"
    const val TIMES_MS = "times_ms"
    const val DEVICE = "device"

    const val STATUS_OK = "ok"
    const val STATUS_ERROR = "error"

    /** Keys of the nested "device" object. */
    object Device {
        const val MANUFACTURER = "manufacturer"
        const val MODEL = "model"
        const val HARDWARE = "hardware"
        const val ABIS = "abis"
        const val PROCESS_64BIT = "process_64bit"
        const val SDK_INT = "sdk_int"
        const val RELEASE = "release"
        const val CORES = "cores"
        const val TOTAL_MEM_MB = "total_mem_mb"
    }
}
