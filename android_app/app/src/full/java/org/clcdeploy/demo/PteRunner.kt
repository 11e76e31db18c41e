package org.clcdeploy.demo

import android.os.Build
import java.io.File
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/** ExecuTorch Module running an XNNPACK-delegated .pte ("full" build only). */
class PteRunner private constructor(
    private val module: Module,
    /** ExecuTorch's Java API does not report input shapes: this is the harness's or the export manifest's. */
    override val inputShape: IntArray
) : ModelRunner {
    private var inputs: Array<EValue>? = null

    override fun setInput(input: FloatArray) {
        inputs = arrayOf(EValue.from(Tensor.fromBlob(input, inputShape.map { it.toLong() }.toLongArray())))
    }

    // Never forward() without inputs: ExecuTorch's JNI would then fill a fresh sample tensor inside every pass.
    override fun run(): FloatArray {
        val staged = checkNotNull(inputs) { "setInput before run" }
        return module.forward(*staged)[0].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()

    companion object {
        const val BUILT_IN = true

        /** `threads` >= 1: an explicit count, so ExecuTorch and LiteRT runs are comparable (Runners.threadCount). */
        fun open(file: File, threads: Int, inputShape: IntArray?): ModelRunner {
            val shape = requireNotNull(inputShape) { "ExecuTorch needs the input shape: its Java API cannot read a .pte's" }
            val module = try {
                Module.load(file.absolutePath, Module.LOAD_MODE_FILE, threads)
            } catch (e: LinkageError) {
                throw RuntimeUnavailableException(
                    "ExecuTorch has no native library for this device's ABIs (" +
                        Build.SUPPORTED_ABIS.joinToString() + "); its AAR ships arm64-v8a only: use tflite",
                    e
                )
            }
            module.loadMethod("forward")
            return PteRunner(module, shape)
        }
    }
}
