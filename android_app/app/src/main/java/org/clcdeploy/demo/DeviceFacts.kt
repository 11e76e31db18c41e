package org.clcdeploy.demo

import android.app.ActivityManager
import android.content.Context
import android.os.Build

/** What the harness needs to know about the phone a result came from. */
data class DeviceFacts(
    val manufacturer: String,
    val model: String,
    val hardware: String,
    val abis: List<String>,
    val process64Bit: Boolean,
    val sdkInt: Int,
    val release: String,
    val cores: Int,
    val totalMemMb: Double
) {
    companion object {
        fun collect(context: Context): DeviceFacts {
            val memory = ActivityManager.MemoryInfo()
            val manager = context.getSystemService(Context.ACTIVITY_SERVICE) as ActivityManager
            manager.getMemoryInfo(memory)
            val hardware = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else Build.HARDWARE
            val is64 = if (Build.VERSION.SDK_INT >= 23) {
                android.os.Process.is64Bit()
            } else {
                (System.getProperty("os.arch") ?: "").contains("64")
            }
            return DeviceFacts(
                manufacturer = Build.MANUFACTURER ?: "",
                model = Build.MODEL ?: "",
                hardware = hardware ?: "",
                abis = Build.SUPPORTED_ABIS.toList().ifEmpty { listOf("unknown") },
                process64Bit = is64,
                sdkInt = Build.VERSION.SDK_INT,
                release = Build.VERSION.RELEASE ?: "",
                cores = Runtime.getRuntime().availableProcessors(),
                totalMemMb = memory.totalMem / (1024.0 * 1024.0)
            )
        }
    }
}
