package org.clcdeploy.demo

import org.json.JSONArray
import org.json.JSONObject

/**
 * The parts of `clcdeploy export`'s manifest.json the app shows or needs: name, mult-adds, params, input
 * shape, where the weights came from and, per format, the file name and size. Read leniently (a few spellings
 * per field), so an added field in the exporter does not break the app; anything missing is null.
 */
data class ModelManifest(
    val name: String,
    val multAdds: Long?,
    val params: Long?,
    val inputShape: IntArray?,
    val formats: Map<String, FormatFile>,
    /** The exporter's description of the weights: "random (seed 0, …)" or "file NAME (sha256 …)". */
    val weights: String? = null
) {
    data class FormatFile(val file: String, val bytes: Long?, val inputShape: IntArray?)

    /** Exported with random weights (clcdeploy/export/weights.py random_weights): real latency, meaningless labels. */
    val randomWeights: Boolean get() = weights?.startsWith("random") == true

    /** The input shape of one format's artifact (the .tflite may be NHWC), else the model's. */
    fun inputShapeFor(runtime: String): IntArray? = formats[runtime]?.inputShape ?: inputShape

    companion object {
        fun parse(text: String, fallbackName: String): ModelManifest {
            val root = JSONObject(text)
            val modelObj = root.optJSONObject("model")
            val name = modelObj?.optString("name")?.takeIf { it.isNotEmpty() }
                ?: root.optString("model").takeIf { it.isNotEmpty() && modelObj == null }
                ?: root.optString("name").takeIf { it.isNotEmpty() }
                ?: fallbackName
            val scopes = listOfNotNull(root, modelObj, root.optJSONObject("cost"))
            val shape = scopes.asSequence().mapNotNull { it.optJSONArray("input_shape") }.firstOrNull()
            return ModelManifest(
                name = name,
                multAdds = firstLong(scopes, "mult_adds", "macs", "multadds"),
                params = firstLong(scopes, "params", "parameters", "num_params"),
                inputShape = shape?.let { toIntArray(it) },
                formats = parseFormats(root.optJSONObject("formats") ?: root.optJSONObject("artifacts")),
                weights = scopes.asSequence().map { it.optString("weights") }.firstOrNull { it.isNotEmpty() }
            )
        }

        private fun firstLong(scopes: List<JSONObject>, vararg keys: String): Long? {
            for (scope in scopes) for (key in keys) {
                if (scope.has(key) && !scope.isNull(key)) {
                    val v = scope.optDouble(key, Double.NaN)
                    if (!v.isNaN()) return v.toLong()
                }
            }
            return null
        }

        private fun toIntArray(array: JSONArray): IntArray = IntArray(array.length()) { array.getInt(it) }

        private fun parseFormats(obj: JSONObject?): Map<String, FormatFile> {
            if (obj == null) return emptyMap()
            val out = LinkedHashMap<String, FormatFile>()
            val keys = obj.keys()
            while (keys.hasNext()) {
                val format = keys.next()
                val entry = obj.optJSONObject(format) ?: continue
                val file = listOf("file", "file_name", "filename", "path")
                    .map { entry.optString(it) }.firstOrNull { it.isNotEmpty() } ?: continue
                val bytes = firstLong(listOf(entry), "bytes", "size", "file_bytes")
                val shape = entry.optJSONArray("input_shape")?.let { toIntArray(it) }
                out[format] = FormatFile(file.substringAfterLast('/'), bytes, shape)
            }
            return out
        }
    }
}
