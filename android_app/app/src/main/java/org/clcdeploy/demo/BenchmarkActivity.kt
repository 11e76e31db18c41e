package org.clcdeploy.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.util.Log
import android.view.WindowManager
import android.widget.TextView
import java.io.File

/**
 * Headless benchmark for automation (like ExecuTorch's minibench):
 *   am start -W -n org.clcdeploy.demo/.BenchmarkActivity --es model_path /data/local/tmp/m.pte
 *       --es runtime pte --ei iterations 10 --ei warmup 3 --ei threads 4 --eia input_shape 1,3,224,224
 *       [--es run_id ID]
 * Loads the model, builds its input once, runs warm-up then timed passes on a background thread, writes
 * files/benchmark_result.json atomically (schema: clcdeploy/bench/app_result.schema.json), logs a one-line
 * summary under the tag "clcdeploy", and finishes. It stays in the foreground while it runs, like an app,
 * also over the lock screen; the manifest keeps configuration changes from recreating it mid-run.
 */
class BenchmarkActivity : Activity() {

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        stayInForeground()
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

    /**
     * A harness run on a locked phone must still run in the foreground (a background app may be put on the
     * little cores): show over the keyguard, turn the screen on, and keep it on until the run ends.
     */
    private fun stayInForeground() {
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        if (Build.VERSION.SDK_INT >= 27) {
            setShowWhenLocked(true)
            setTurnScreenOn(true)
        } else {
            @Suppress("DEPRECATION") // the pre-27 way, for the legacy build's Android 5.1 phones
            window.addFlags(
                WindowManager.LayoutParams.FLAG_SHOW_WHEN_LOCKED or WindowManager.LayoutParams.FLAG_TURN_SCREEN_ON
            )
        }
    }

    /** The intent extras, checked; `problem` is set instead of throwing so the result file still says why. */
    class Request(
        val modelPath: String,
        val runtime: String,
        val iterations: Int,
        val warmup: Int,
        val threads: Int,
        val runId: String?,
        /** The artifact's input shape from the harness (its manifest's), or null when not sent. */
        val inputShape: IntArray?,
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
                val shape = extras?.getIntArray(Protocol.EXTRA_INPUT_SHAPE)
                val problem = when {
                    path.isEmpty() -> "missing extra ${Protocol.EXTRA_MODEL_PATH} (--es ${Protocol.EXTRA_MODEL_PATH} /path/model.pte)"
                    given != null && given != Protocol.RUNTIME_PTE && given != Protocol.RUNTIME_TFLITE ->
                        "extra ${Protocol.EXTRA_RUNTIME} must be pte or tflite, got '$given'"
                    given == null && inferred == null -> "missing extra ${Protocol.EXTRA_RUNTIME} (pte or tflite)"
                    iterations < 1 -> "extra ${Protocol.EXTRA_ITERATIONS} must be >= 1, got $iterations"
                    warmup < 0 -> "extra ${Protocol.EXTRA_WARMUP} must be >= 0, got $warmup"
                    threads < 0 -> "extra ${Protocol.EXTRA_THREADS} must be >= 0, got $threads"
                    shape != null && (shape.isEmpty() || shape.any { it < 1 }) ->
                        "extra ${Protocol.EXTRA_INPUT_SHAPE} must be positive sizes, got ${ImageInput.shapeText(shape)}"
                    else -> null
                }
                val runtime = if (given == Protocol.RUNTIME_PTE || given == Protocol.RUNTIME_TFLITE) given
                else inferred ?: Protocol.RUNTIME_PTE
                return Request(
                    path, runtime, maxOf(iterations, 1), maxOf(warmup, 0), maxOf(threads, 0),
                    extras?.getString(Protocol.EXTRA_RUN_ID), shape, problem
                )
            }
        }
    }

    private fun runBenchmark(request: Request): BenchmarkResult {
        val device = DeviceFacts.collect(this)
        val threads = Runners.threadCount(request.threads)
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
                val shape = inputShapeFor(request, file)
                val start = System.nanoTime()
                val runner = Runners.open(request.runtime, file, threads, shape)
                loadMs = (System.nanoTime() - start) / 1e6
                runner.use { r ->
                    request.inputShape?.let { checkSameShape(it, r.inputShape) }
                    // Built once, before warm-up: the timed passes run the model on the same staged input.
                    r.setInput(ImageInput.synthetic(r.inputShape))
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
            runtimeLibrary = Runners.library(request.runtime),
            threads = threads,
            warmup = request.warmup,
            iterations = request.iterations,
            loadMs = loadMs,
            timesMs = times,
            device = device,
            error = error
        )
    }

    /**
     * The input shape: the harness's extra (it pushes only the artifact), else a manifest.json next to the
     * model. ExecuTorch's Java API cannot read a .pte's input shape, so a .pte run without either is refused
     * (the legacy build, which has no ExecuTorch at all, says that instead).
     */
    private fun inputShapeFor(request: Request, model: File): IntArray? {
        val shape = request.inputShape ?: manifestShapeNextTo(model, request.runtime)
        if (shape == null && request.runtime == Protocol.RUNTIME_PTE && PteRunner.BUILT_IN) {
            throw IllegalArgumentException(
                "the input shape is missing: pass --eia ${Protocol.EXTRA_INPUT_SHAPE} 1,3,H,W (the .pte's " +
                    "input_shape in its manifest), or push its manifest.json next to ${model.name}"
            )
        }
        return shape
    }

    /** LiteRT reads the model's own input shape: a different one from the harness means a mismatched manifest. */
    private fun checkSameShape(given: IntArray, model: IntArray) {
        require(given.contentEquals(model)) {
            "extra ${Protocol.EXTRA_INPUT_SHAPE} ${ImageInput.shapeText(given)} differs from the model's input " +
                "tensor shape ${ImageInput.shapeText(model)}"
        }
    }

    /** Input shape from a manifest.json in the model's folder (when the whole export folder was pushed). */
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
