package org.clcdeploy.demo

/** One headless benchmark run, before it is written as JSON (see ResultJson). */
data class BenchmarkResult(
    val runId: String?,
    val model: String,
    val runtime: String,
    val runtimeLibrary: String,
    val threads: Int,
    val warmup: Int,
    val iterations: Int,
    val loadMs: Double?,
    val timesMs: List<Double>,
    val device: DeviceFacts,
    val error: String?
) {
    val ok: Boolean get() = error == null

    /** The one-line logcat summary. */
    fun summary(): String {
        val mean = if (timesMs.isEmpty()) Double.NaN else timesMs.average()
        val min = timesMs.minOrNull() ?: Double.NaN
        val status = if (ok) ResultKeys.STATUS_OK else ResultKeys.STATUS_ERROR
        val base = "status=$status runtime=$runtime model=$model threads=$threads n=${timesMs.size} " +
            "load_ms=${fmt(loadMs)} mean_ms=${fmt(mean)} min_ms=${fmt(min)}"
        return if (error == null) base else "$base error=${error.replace('\n', ' ')}"
    }

    private fun fmt(value: Double?): String =
        if (value == null || value.isNaN()) "-" else String.format(java.util.Locale.US, "%.3f", value)
}
