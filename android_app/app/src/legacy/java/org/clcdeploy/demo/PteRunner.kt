package org.clcdeploy.demo

import java.io.File

/** The legacy (minSdk 22) build has no ExecuTorch: asking it for a .pte run reports exactly that. */
object PteRunner {
    const val BUILT_IN = false

    fun open(file: File, threads: Int, inputShape: IntArray?): ModelRunner = throw RuntimeUnavailableException(
        "this is the legacy build (minSdk 22, LiteRT only) without ExecuTorch: " +
            "install the full build to run ${file.name} (threads=$threads)"
    )
}
