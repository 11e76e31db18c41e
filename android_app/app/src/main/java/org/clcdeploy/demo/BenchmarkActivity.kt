package org.clcdeploy.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import android.view.WindowManager
import android.widget.TextView
import java.io.File

/**
 * Headless benchmark for automation (like ExecuTorch's minibench):
 *   am start -W -n org.clcdeploy.demo/.BenchmarkActivity --es model_path /data/local/tmp/m.pte
 *       --es runtime pte --ei iterations 10 --ei warmup 1 --ei threads 4 [--es run_id ID]
 * Loads the model, runs warm-up then timed passes on a background thread, writes
 * files/benchmark_result.json atomically (schema: clcdeploy/bench/app_result.schema.json), logs a one-line
 * summary under the tag "clcdeploy", and finishes. It stays in the foreground while it runs, like an app.
 */
class BenchmarkActivity : Activity() {

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        setContentView(TextView(this).apply { setText(R.string.benchmark_running); setPadding(32, 32, 32, 32) })
        if (savedInstanceState != null) return // recreated mid-run: the first instance's thread still writes
        val request = Request.from(intent.extras)
        Thread({
            val result = runBenchmark(request)
            try {
                ResultJson.writeAtomically(result, filesDir)
                Log.i(Protocol.LOG_TAG, result.summary())
            } catch (e: Exception) {
                Log.e(Protocol.LOG_TAG, "status=error could not write ${Protocol.RESULT_FILE}: $e")
            }
            runOnUiThread { finish() }
        }, "clcdeploy-benchmark").start()
    }

    /** The intent extras, checked; `problem` is set instead of throwing so the result file still says why. */
    class Request(
        val modelPath: String,
        val runtime: String,
        val iterations: Int,
        val warmup: Int,
        val threads: Int,
        val runId: String?,
        val problem: String?
    ) {
        companion object {
            fun from(extras: Bundle?): Request {
                val path = extras?.getString(Protocol.EXTRA_MODEL_PATH) ?: ""
                val given = extras?.getString(Protocol.EXTRA_RUNTIME)
                val inferred = when {
                    path.endsWith(".pte") -> Protocol.RUNTIME_PTE
                    path.endsWith(".tflite") -> Protocol.RUNTIME_TFLITE
                    else -> null
                }
                val iterations = extras?.getInt(Protocol.EXTRA_ITERATIONS, Protocol.DEFAULT_ITERATIONS)
                    ?: Protocol.DEFAULT_ITERATIONS
                val warmup = extras?.getInt(Protocol.EXTRA_WARMUP, Protocol.DEFAULT_WARMUP) ?: Protocol.DEFAULT_WARMUP
                val threads = extras?.getInt(Protocol.EXTRA_THREADS, 0) ?: 0
                val problem = when {
                    path.isEmpty() -> "missing extra ${Protocol.EXTRA_MODEL_PATH} (--es ${Protocol.EXTRA_MODEL_PATH} /path/model.pte)"
                    given != null && given != Protocol.RUNTIME_PTE && given != Protocol.RUNTIME_TFLITE ->
                        "extra ${Protocol.EXTRA_RUNTIME} must be pte or tflite, got '$given'"
                    given == null && inferred == null -> "missing extra ${Protocol.EXTRA_RUNTIME} (pte or tflite)"
                    iterations < 1 -> "extra ${Protocol.EXTRA_ITERATIONS} must be >= 1, got $iterations"
                    warmup < 0 -> "extra ${Protocol.EXTRA_WARMUP} must be >= 0, got $warmup"
                    threads < 0 -> "extra ${Protocol.EXTRA_THREADS} must be >= 0, got $threads"
                    else -> null
                }
                val runtime = if (given == Protocol.RUNTIME_PTE || given == Protocol.RUNTIME_TFLITE) given
                else inferred ?: Protocol.RUNTIME_PTE
                return Request(
                    path, runtime, maxOf(iterations, 1), maxOf(warmup, 0), maxOf(threads, 0),
                    extras?.getString(Protocol.EXTRA_RUN_ID), problem
                )
            }
        }
    }

    private fun runBenchmark(request: Request): BenchmarkResult {
        val device = DeviceFacts.collect(this)
        var loadMs: Double? = null
        val times = ArrayList<Double>()
        var error: String? = request.problem
        if (error == null) {
            try {
                val file = File(request.modelPath)
                if (!file.canRead()) {
                    throw IllegalArgumentException(
                        "cannot read ${request.modelPath}: push it world-readable (chmod 644) under /data/local/tmp"
                    )
                }
                val manifestShape = manifestShapeNextTo(file, request.runtime)
                val start = System.nanoTime()
                val runner = Runners.open(request.runtime, file, request.threads, manifestShape)
                loadMs = (System.nanoTime() - start) / 1e6
                runner.use { r ->
                    val shape = r.inputShape ?: manifestShape
                    r.setInput(shape?.let { s -> ImageInput.synthetic(s) })
                    repeat(request.warmup) { r.run() }
                    repeat(request.iterations) {
                        val t0 = System.nanoTime()
                        r.run()
                        times.add((System.nanoTime() - t0) / 1e6)
                    }
                }
            } catch (t: Throwable) {
                error = "${t.javaClass.simpleName}: ${t.message}"
            }
        }
        return BenchmarkResult(
            runId = request.runId,
            model = request.modelPath,
            runtime = request.runtime,
            threads = request.threads,
            warmup = request.warmup,
            iterations = request.iterations,
            loadMs = loadMs,
            timesMs = times,
            device = device,
            error = error
        )
    }

    /** Input shape from a manifest.json in the model's folder (as the harness pushes models/<name>/). */
    private fun manifestShapeNextTo(model: File, runtime: String): IntArray? {
        val manifest = File(model.parentFile, "manifest.json")
        if (!manifest.canRead()) return null
        return try {
            ModelManifest.parse(manifest.readText(), model.nameWithoutExtension).inputShapeFor(runtime)
        } catch (e: Exception) {
            Log.w(Protocol.LOG_TAG, "ignoring unreadable ${manifest.path}: $e")
            null
        }
    }
}
