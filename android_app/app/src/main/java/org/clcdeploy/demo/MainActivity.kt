package org.clcdeploy.demo

import android.app.Activity
import android.content.ActivityNotFoundException
import android.content.Intent
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import android.os.Bundle
import android.provider.MediaStore
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.ImageView
import android.widget.Spinner
import android.widget.TextView
import android.widget.Toast
import java.io.File
import java.io.IOException
import java.util.Locale

/**
 * Classification demo: pick a bundled model (assets/models/<name>/ from `clcdeploy export`) and a runtime,
 * pick an image (bundled sample, gallery or camera), then see the top-5 labels, the average latency of ten
 * passes (as in the clcNet paper's Table 6), the model's mult-adds and its file size.
 */
class MainActivity : Activity() {
    private lateinit var models: List<BundledModel>
    private lateinit var modelSpinner: Spinner
    private lateinit var runtimeSpinner: Spinner
    private lateinit var info: TextView
    private lateinit var weightsNote: TextView
    private lateinit var result: TextView
    private lateinit var imageView: ImageView
    private lateinit var runButton: Button
    private var image: Bitmap? = null
    private var classifying = false
    private val labels: List<String> by lazy { readLabels() }

    /** When this APK was installed or last updated (ms); bundled models copied out before then are stale. */
    private val installedAt: Long by lazy { lastUpdateTime() }

    /** A model folder in assets, with its manifest. */
    data class BundledModel(val folder: String, val manifest: ModelManifest, val files: Map<String, String>)

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelSpinner = findViewById(R.id.model_spinner)
        runtimeSpinner = findViewById(R.id.runtime_spinner)
        info = findViewById(R.id.model_info)
        weightsNote = findViewById(R.id.weights_note)
        result = findViewById(R.id.result)
        imageView = findViewById(R.id.image)
        runButton = findViewById(R.id.button_run)

        models = listBundledModels()
        if (models.isEmpty()) info.setText(R.string.no_models)
        modelSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, models.map { it.manifest.name })
        modelSpinner.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = showModel(models[position])
            override fun onNothingSelected(parent: AdapterView<*>?) = Unit
        }
        findViewById<Button>(R.id.button_sample).setOnClickListener { loadSample() }
        findViewById<Button>(R.id.button_gallery).setOnClickListener {
            launch(Intent(Intent.ACTION_GET_CONTENT).setType("image/*"), REQUEST_GALLERY)
        }
        findViewById<Button>(R.id.button_camera).setOnClickListener {
            launch(Intent(MediaStore.ACTION_IMAGE_CAPTURE), REQUEST_CAMERA)
        }
        runButton.setOnClickListener { classify() }
        restore(savedInstanceState)
    }

    /** After a rotation: the same picture (handed over in memory) and the last result; else the sample. */
    private fun restore(savedInstanceState: Bundle?) {
        val kept = lastNonConfigurationInstance as? Bitmap
        if (kept != null) setImage(kept) else loadSample()
        savedInstanceState?.getCharSequence(KEY_RESULT)?.let { result.text = it }
    }

    override fun onRetainNonConfigurationInstance(): Any? = image

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        // A classification still running belongs to this instance and is lost with it: do not keep "Running…".
        if (!classifying) outState.putCharSequence(KEY_RESULT, result.text)
    }

    private fun launch(intent: Intent, request: Int) {
        try {
            startActivityForResult(intent, request)
        } catch (e: ActivityNotFoundException) {
            Toast.makeText(this, "No app on this phone handles that: ${e.message}", Toast.LENGTH_LONG).show()
        }
    }

    @Deprecated("Activity result API of the platform Activity; kept for minSdk 22 without AndroidX")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (resultCode != RESULT_OK || data == null) return
        when (requestCode) {
            REQUEST_CAMERA -> cameraPicture(data)?.let { setImage(it) }
            REQUEST_GALLERY -> data.data?.let { loadPicked(it) }
        }
    }

    /** The camera app's preview-size picture, already decoded in the result. */
    @Suppress("DEPRECATION") // Bundle.get: the typed getParcelable(key, Class) needs API 33
    private fun cameraPicture(data: Intent): Bitmap? = data.extras?.get("data") as? Bitmap

    /** A picked image may be large or remote (a cloud provider): read and decode it off the main thread. */
    private fun loadPicked(uri: Uri) {
        result.setText(R.string.reading_image)
        Thread({
            val message = try {
                val bitmap = readImage(uri)
                runOnUiThread { setImage(bitmap); result.text = "" }
                null
            } catch (e: SecurityException) {
                "Not allowed to read that image: ${e.message}"
            } catch (e: IOException) {
                "Could not read that image: ${e.message}"
            }
            if (message != null) runOnUiThread { result.text = message }
        }, "clcdeploy-image").start()
    }

    private fun readImage(uri: Uri): Bitmap {
        val bytes = contentResolver.openInputStream(uri)?.use { it.readBytes() }
            ?: throw IOException("the gallery gave no data for $uri")
        return decodeBounded(bytes) ?: throw IOException("not a picture this phone can decode")
    }

    private fun decodeBounded(bytes: ByteArray): Bitmap? {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        BitmapFactory.decodeByteArray(bytes, 0, bytes.size, bounds)
        var sample = 1
        while (bounds.outWidth / (sample * 2) >= 448 && bounds.outHeight / (sample * 2) >= 448) sample *= 2
        return BitmapFactory.decodeByteArray(bytes, 0, bytes.size, BitmapFactory.Options().apply { inSampleSize = sample })
    }

    private fun loadSample() {
        val bitmap = try {
            assets.open(SAMPLE_ASSET).use { decodeBounded(it.readBytes()) }
        } catch (e: IOException) {
            null
        }
        if (bitmap == null) result.setText(R.string.no_sample) else setImage(bitmap)
    }

    private fun setImage(bitmap: Bitmap) {
        image = bitmap
        imageView.setImageBitmap(bitmap)
    }

    private fun showModel(model: BundledModel) {
        val runtimes = Runners.available().filter { it in model.files }
        runtimeSpinner.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, runtimes)
        val m = model.manifest
        info.text = String.format(
            Locale.US, "%s · mult-adds %s · params %s · input %s",
            m.name, millions(m.multAdds), millions(m.params),
            m.inputShape?.joinToString("×") ?: "?"
        )
        // Random weights (exported without --weights) give real latency but labels that mean nothing.
        weightsNote.visibility = if (m.randomWeights) View.VISIBLE else View.GONE
    }

    private fun classify() {
        if (classifying) return
        val model = models.getOrNull(modelSpinner.selectedItemPosition) ?: return
        val runtime = runtimeSpinner.selectedItem as? String ?: return
        val bitmap = image ?: run { result.setText(R.string.choose_image); return }
        setClassifying(true)
        result.setText(R.string.running)
        Thread({
            val text = try {
                runTenPasses(model, runtime, bitmap)
            } catch (t: Throwable) {
                "${t.javaClass.simpleName}: ${t.message}"
            }
            runOnUiThread { result.text = text; setClassifying(false) }
        }, "clcdeploy-classify").start()
    }

    /** One classification at a time: the button is off while one runs (each loads its own copy of the model). */
    private fun setClassifying(on: Boolean) {
        classifying = on
        runButton.isEnabled = !on
    }

    private fun runTenPasses(model: BundledModel, runtime: String, bitmap: Bitmap): String {
        val file = copyOut(model, model.files.getValue(runtime))
        val threads = Runners.threadCount(0)
        val start = System.nanoTime()
        val shape = model.manifest.inputShapeFor(runtime) ?: ImageInput.DEFAULT_SHAPE // LiteRT reads its own
        Runners.open(runtime, file, threads, shape).use { runner ->
            val loadMs = (System.nanoTime() - start) / 1e6
            runner.setInput(ImageInput.toInput(bitmap, runner.inputShape))
            var logits = runner.run() // warm-up pass, not timed
            val times = DoubleArray(PASSES) {
                val t0 = System.nanoTime()
                logits = runner.run()
                (System.nanoTime() - t0) / 1e6
            }
            val bytes = model.manifest.formats[runtime]?.bytes ?: file.length()
            val sb = StringBuilder()
            sb.append(String.format(Locale.US, "%s on %s (threads %d)\n", model.manifest.name, runtime, threads))
            sb.append(String.format(Locale.US, "average of %d passes: %.1f ms (min %.1f, load %.0f ms)\n",
                PASSES, times.average(), times.minOrNull() ?: 0.0, loadMs))
            sb.append(String.format(Locale.US, "mult-adds %s · file %.1f MB\n\n", millions(model.manifest.multAdds), bytes / 1e6))
            if (model.manifest.randomWeights) sb.append(getString(R.string.random_weights_note)).append("\n")
            for ((rank, top) in ImageInput.topK(logits, 5).withIndex()) {
                val label = labels.getOrNull(top.first) ?: "class ${top.first}"
                sb.append(String.format(Locale.US, "%d. %s  %.1f%%\n", rank + 1, label, top.second * 100))
            }
            return sb.toString()
        }
    }

    /**
     * Runtimes load from a file path: copy the asset to app storage once, and again when the copy is missing, of
     * another size, or older than this APK (`adb install -r` with new weights of the same size).
     */
    private fun copyOut(model: BundledModel, name: String): File {
        val target = File(File(filesDir, "models/${model.folder}"), name)
        val asset = "$MODELS_DIR/${model.folder}/$name"
        val length = try { assets.openFd(asset).use { it.length } } catch (e: IOException) { -1L }
        if (!target.exists() || target.length() != length || target.lastModified() < installedAt) {
            target.parentFile?.mkdirs()
            assets.open(asset).use { input -> target.outputStream().use { input.copyTo(it) } }
        }
        return target
    }

    private fun lastUpdateTime(): Long = try {
        @Suppress("DEPRECATION") // the int-flags overload: PackageInfoFlags needs API 33
        packageManager.getPackageInfo(packageName, 0).lastUpdateTime
    } catch (e: PackageManager.NameNotFoundException) {
        Long.MAX_VALUE // cannot tell: always copy afresh
    }

    private fun listBundledModels(): List<BundledModel> {
        val folders = assets.list(MODELS_DIR) ?: emptyArray()
        return folders.sorted().mapNotNull { folder ->
            val names = assets.list("$MODELS_DIR/$folder")?.toList() ?: emptyList()
            val files = LinkedHashMap<String, String>()
            names.firstOrNull { it.endsWith(".pte") }?.let { files[Protocol.RUNTIME_PTE] = it }
            names.firstOrNull { it.endsWith(".tflite") }?.let { files[Protocol.RUNTIME_TFLITE] = it }
            if (files.isEmpty()) return@mapNotNull null
            val manifest = try {
                assets.open("$MODELS_DIR/$folder/manifest.json").bufferedReader().use { ModelManifest.parse(it.readText(), folder) }
            } catch (e: Exception) {
                ModelManifest(folder, null, null, null, emptyMap())
            }
            BundledModel(folder, manifest, files)
        }
    }

    private fun readLabels(): List<String> = try {
        assets.open(LABELS_ASSET).bufferedReader().readLines().map { it.trim() }.filter { it.isNotEmpty() }
    } catch (e: IOException) {
        emptyList()
    }

    private fun millions(value: Long?): String =
        if (value == null) "?" else String.format(Locale.US, "%.1fM", value / 1e6)

    companion object {
        private const val REQUEST_GALLERY = 1
        private const val REQUEST_CAMERA = 2
        private const val PASSES = 10
        private const val MODELS_DIR = "models"
        private const val SAMPLE_ASSET = "sample.jpg"
        private const val LABELS_ASSET = "labels.txt"
        private const val KEY_RESULT = "result"
    }
}
