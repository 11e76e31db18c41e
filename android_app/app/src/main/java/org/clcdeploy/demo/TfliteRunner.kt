package org.clcdeploy.demo

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter

/** LiteRT (TFLite) Interpreter with its default XNNPACK CPU delegate; float32 models. */
class TfliteRunner(file: File, threads: Int) : ModelRunner {
    private val interpreter: Interpreter = openInterpreter(file, threads)
    override val inputShape: IntArray = interpreter.getInputTensor(0).shape()
    private val inputBuffer: ByteBuffer = direct(interpreter.getInputTensor(0).numBytes())
    private val outputBuffer: ByteBuffer = direct(interpreter.getOutputTensor(0).numBytes())

    init {
        val input = interpreter.getInputTensor(0).dataType()
        val output = interpreter.getOutputTensor(0).dataType()
        if (input != DataType.FLOAT32 || output != DataType.FLOAT32) {
            interpreter.close()
            throw IllegalArgumentException("only float32 models are supported, got input $input, output $output")
        }
    }

    override fun setInput(input: FloatArray) {
        inputBuffer.clear()
        val floats = inputBuffer.asFloatBuffer()
        require(input.size == floats.capacity()) {
            "input has ${input.size} values, the model takes ${floats.capacity()}"
        }
        floats.put(input)
    }

    override fun run(): FloatArray {
        inputBuffer.rewind()
        outputBuffer.rewind()
        interpreter.run(inputBuffer, outputBuffer)
        outputBuffer.rewind()
        val out = FloatArray(outputBuffer.capacity() / 4)
        outputBuffer.asFloatBuffer().get(out)
        return out
    }

    override fun close() = interpreter.close()

    private companion object {
        /** `threads` >= 1, always set: LiteRT's unset count (-1) runs XNNPACK on a single thread. */
        fun openInterpreter(file: File, threads: Int): Interpreter {
            val options = Interpreter.Options().setNumThreads(threads)
            return try {
                Interpreter(file, options)
            } catch (e: UnsatisfiedLinkError) {
                throw RuntimeUnavailableException("LiteRT has no native library for this device's ABI", e)
            }
        }

        fun direct(bytes: Int): ByteBuffer = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder())
    }
}
