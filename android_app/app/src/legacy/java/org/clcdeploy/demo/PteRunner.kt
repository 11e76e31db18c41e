package org.clcdeploy.demo

import java.io.File

/** The legacy (minSdk 22) build has no ExecuTorch: asking it for a .pte run reports exactly that. */
object PteRunner {
    const val BUILT_IN = false

    fun open(file: File, threads: Int, inputShape: IntArray?): ModelRunner = throw RuntimeUnavailableException(
        "this is the legacy build (minSdk 22, LiteRT only) without ExecuTorch, so it cannot run ${file.name}: " +
            if (android.os.Build.VERSION.SDK_INT >= 23) "install the full build (arm64-v8a phones)"
            else "the full build needs Android 6 (SDK 23); run .tflite artifacts here"
    )
}
