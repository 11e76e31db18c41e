package org.clcdeploy.demo

import java.io.File
import java.io.IOException
import org.json.JSONArray
import org.json.JSONObject

/** Writes a BenchmarkResult in the shape of clcdeploy/bench/app_result.schema.json, using ResultKeys only. */
object ResultJson {
    fun toJson(result: BenchmarkResult): JSONObject {
        val device = JSONObject()
        device.put(ResultKeys.Device.MANUFACTURER, result.device.manufacturer)
        device.put(ResultKeys.Device.MODEL, result.device.model)
        device.put(ResultKeys.Device.HARDWARE, result.device.hardware)
        device.put(ResultKeys.Device.ABIS, JSONArray(result.device.abis))
        device.put(ResultKeys.Device.PROCESS_64BIT, result.device.process64Bit)
        device.put(ResultKeys.Device.SDK_INT, result.device.sdkInt)
        device.put(ResultKeys.Device.RELEASE, result.device.release)
        device.put(ResultKeys.Device.CORES, result.device.cores)
        device.put(ResultKeys.Device.TOTAL_MEM_MB, result.device.totalMemMb)

        val times = JSONArray()
        for (t in result.timesMs) times.put(t)

        val json = JSONObject()
        json.put(ResultKeys.SCHEMA_VERSION, ResultKeys.SCHEMA_VERSION_VALUE)
        json.put(ResultKeys.RUN_ID, result.runId ?: JSONObject.NULL)
        json.put(ResultKeys.STATUS, if (result.ok) ResultKeys.STATUS_OK else ResultKeys.STATUS_ERROR)
        json.put(ResultKeys.ERROR, result.error ?: JSONObject.NULL)
        json.put(ResultKeys.MODEL, result.model)
        json.put(ResultKeys.RUNTIME, result.runtime)
        json.put(ResultKeys.RUNTIME_LIBRARY, result.runtimeLibrary)
        json.put(ResultKeys.THREADS, result.threads)
        json.put(ResultKeys.WARMUP, result.warmup)
        json.put(ResultKeys.ITERATIONS, result.iterations)
        json.put(ResultKeys.LOAD_MS, result.loadMs ?: JSONObject.NULL)
        json.put(ResultKeys.TIMES_MS, times)
        json.put(ResultKeys.DEVICE, device)
        return json
    }

    /** Write atomically: a temporary file in the same folder, then rename over the final name. */
    @Throws(IOException::class)
    fun writeAtomically(result: BenchmarkResult, dir: File, name: String = Protocol.RESULT_FILE): File {
        val target = File(dir, name)
        val tmp = File(dir, "$name.tmp")
        tmp.writeText(toJson(result).toString(2), Charsets.UTF_8)
        if (!tmp.renameTo(target)) {
            tmp.delete()
            throw IOException("could not rename $tmp to $target")
        }
        return target
    }
}
