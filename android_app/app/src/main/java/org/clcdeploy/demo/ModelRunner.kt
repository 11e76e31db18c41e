package org.clcdeploy.demo

import java.io.Closeable
import java.io.File

/** One loaded model on one runtime. setInput once, then run() per timed pass. */
interface ModelRunner : Closeable {
    /** Shape of the model's single input: LiteRT reads it from the model, ExecuTorch is told it at open. */
    val inputShape: IntArray

    /** Stage the input for the following run() calls; the runtime's input tensor is built here, not per pass. */
    fun setInput(input: FloatArray)

    /** One inference pass; returns the first output, flattened. */
    fun run(): FloatArray
}

/** A runtime that this build or this device's ABI does not have (reported, not crashed on). */
class RuntimeUnavailableException(message: String, cause: Throwable? = null) : Exception(message, cause)

object Runners {
    /**
     * Load `file` on `runtime` ("pte" or "tflite") with `threads` (>= 1, see threadCount). `inputShape` (from
     * the harness or the export manifest) is needed by ExecuTorch only; LiteRT reads it from the model.
     */
    fun open(runtime: String, file: File, threads: Int, inputShape: IntArray?): ModelRunner {
        require(threads >= 1) { "threads must be >= 1 (resolve 0 with Runners.threadCount), got $threads" }
        return when (runtime) {
            Protocol.RUNTIME_PTE -> PteRunner.open(file, threads, inputShape)
            Protocol.RUNTIME_TFLITE -> TfliteRunner(file, threads)
            else -> throw IllegalArgumentException("runtime must be pte or tflite, got $runtime")
        }
    }

    /**
     * The one thread count both runtimes get for `requested`; 0 = ExecuTorch's own default, cores/2 (at least 1).
     * Resolved here because LiteRT's unset count means a single XNNPACK thread, and the result reports the count.
     */
    fun threadCount(requested: Int): Int =
        if (requested > 0) requested else maxOf(1, Runtime.getRuntime().availableProcessors() / 2)

    /** The runtime library this build runs `runtime` with, as Maven coordinates (each result names it). */
    fun library(runtime: String): String = when {
        runtime == Protocol.RUNTIME_PTE && PteRunner.BUILT_IN ->
            "org.pytorch:executorch-android:${BuildConfig.EXECUTORCH_VERSION}"
        runtime == Protocol.RUNTIME_TFLITE -> "com.google.ai.edge.litert:litert:${BuildConfig.LITERT_VERSION}"
        else -> "none"
    }

    /** Runtimes this build can run (the legacy build has no ExecuTorch). */
    fun available(): List<String> =
        if (PteRunner.BUILT_IN) listOf(Protocol.RUNTIME_PTE, Protocol.RUNTIME_TFLITE)
        else listOf(Protocol.RUNTIME_TFLITE)
}
