package org.clcdeploy.demo

import android.os.Build
import java.io.File
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/** ExecuTorch Module running an XNNPACK-delegated .pte ("full" build only). */
class PteRunner private constructor(
    private val module: Module,
    /** ExecuTorch's Java API does not report input shapes: this is the export manifest's, if known. */
    override val inputShape: IntArray?
) : ModelRunner {
    private var inputs: Array<EValue> = emptyArray()

    override fun setInput(input: FloatArray?) {
        val shape = inputShape
        inputs = if (input == null || shape == null) {
            emptyArray() // forward() without inputs runs the method on ExecuTorch's sample inputs
        } else {
            arrayOf(EValue.from(Tensor.fromBlob(input, shape.map { it.toLong() }.toLongArray())))
        }
    }

    override fun run(): FloatArray = module.forward(*inputs)[0].toTensor().dataAsFloatArray

    override fun close() = module.destroy()

    companion object {
        const val BUILT_IN = true

        fun open(file: File, threads: Int, inputShape: IntArray?): ModelRunner {
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
            return PteRunner(module, inputShape)
        }
    }
}
