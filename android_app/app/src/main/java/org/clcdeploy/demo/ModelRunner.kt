package org.clcdeploy.demo

import java.io.Closeable
import java.io.File

/** One loaded model on one runtime. setInput once, then run() per timed pass. */
interface ModelRunner : Closeable {
    /** Shape of the model's single input, or null when the runtime cannot report it (ExecuTorch). */
    val inputShape: IntArray?

    /** Stage the input for the following run() calls; null = the runtime's own sample input. */
    fun setInput(input: FloatArray?)

    /** One inference pass; returns the first output, flattened. */
    fun run(): FloatArray
}

/** A runtime that this build or this device's ABI does not have (reported, not crashed on). */
class RuntimeUnavailableException(message: String, cause: Throwable? = null) : Exception(message, cause)

object Runners {
    /**
     * Load `file` on `runtime` ("pte" or "tflite"); threads 0 = the runtime's default. `inputShape` (from the
     * export manifest) is needed by ExecuTorch only; LiteRT reads it from the model.
     */
    fun open(runtime: String, file: File, threads: Int, inputShape: IntArray?): ModelRunner = when (runtime) {
        Protocol.RUNTIME_PTE -> PteRunner.open(file, threads, inputShape)
        Protocol.RUNTIME_TFLITE -> TfliteRunner(file, threads)
        else -> throw IllegalArgumentException("runtime must be pte or tflite, got $runtime")
    }

    /** Runtimes this build can run (the legacy build has no ExecuTorch). */
    fun available(): List<String> =
        if (PteRunner.BUILT_IN) listOf(Protocol.RUNTIME_PTE, Protocol.RUNTIME_TFLITE)
        else listOf(Protocol.RUNTIME_TFLITE)
}
