package org.clcdeploy.demo

import android.graphics.Bitmap
import kotlin.math.exp
import kotlin.math.max
import kotlin.math.min
import kotlin.math.roundToInt

/** Image to model input (ImageNet evaluation preprocessing) and logits to top-k. */
object ImageInput {
    private val MEAN = floatArrayOf(0.485f, 0.456f, 0.406f)
    private val STD = floatArrayOf(0.229f, 0.224f, 0.225f)

    /** ImageNet evaluation: resize the short side to 256, centre-crop 224 (scaled alike for other sizes). */
    private const val RESIZE = 256f
    private const val CROP = 224f

    /** Default when neither the runtime nor the manifest gives a shape. */
    val DEFAULT_SHAPE = intArrayOf(1, 3, 224, 224)

    /** A shape as the harness writes it in messages, e.g. [1,3,224,224]. */
    fun shapeText(shape: IntArray): String = shape.joinToString(",", "[", "]")

    /** Bitmap to a float input of `shape` ([1,3,H,W] NCHW or [1,H,W,3] NHWC). */
    fun toInput(bitmap: Bitmap, shape: IntArray): FloatArray {
        require(shape.size == 4 && shape[0] == 1 && (shape[1] == 3 || shape[3] == 3)) {
            "expected an image input of shape [1,3,H,W] or [1,H,W,3], got ${shapeText(shape)}"
        }
        val nchw = shape[1] == 3
        val h = if (nchw) shape[2] else shape[1]
        val w = if (nchw) shape[3] else shape[2]
        val crop = centreCrop(bitmap.width, bitmap.height, w, h)
        val region = Bitmap.createBitmap(bitmap, crop[0], crop[1], crop[2], crop[3])
        val scaled = Bitmap.createScaledBitmap(region, w, h, true)
        val pixels = IntArray(w * h)
        scaled.getPixels(pixels, 0, w, 0, 0, w, h)
        val out = FloatArray(3 * w * h)
        for (i in pixels.indices) {
            val p = pixels[i]
            val rgb = floatArrayOf(((p shr 16) and 0xff) / 255f, ((p shr 8) and 0xff) / 255f, (p and 0xff) / 255f)
            for (c in 0 until 3) {
                val v = (rgb[c] - MEAN[c]) / STD[c]
                if (nchw) out[c * w * h + i] = v else out[i * 3 + c] = v
            }
        }
        return out
    }

    /**
     * The region [x, y, width, height] of a `width`×`height` picture that resizing its short side to
     * size*256/224 and then centre-cropping `w`×`h` keeps, in the picture's own pixels: cropping first and
     * scaling that region to `w`×`h` gives the same input without scaling the whole picture.
     */
    fun centreCrop(width: Int, height: Int, w: Int, h: Int): IntArray {
        val resizedShort = max(w, h) * RESIZE / CROP
        val perOutputPixel = min(width, height) / resizedShort
        val cw = (w * perOutputPixel).roundToInt().coerceIn(1, width)
        val ch = (h * perOutputPixel).roundToInt().coerceIn(1, height)
        return intArrayOf((width - cw) / 2, (height - ch) / 2, cw, ch)
    }

    /** Deterministic synthetic input for the headless benchmark (latency does not depend on the values). */
    fun synthetic(shape: IntArray): FloatArray {
        val n = shape.fold(1) { acc, d -> acc * d }
        val random = java.util.Random(0)
        return FloatArray(n) { random.nextGaussian().toFloat() }
    }

    /** The k largest softmax probabilities as (class index, probability), best first. */
    fun topK(logits: FloatArray, k: Int = 5): List<Pair<Int, Float>> {
        if (logits.isEmpty()) return emptyList()
        val max = logits.maxOrNull() ?: 0f
        val exps = DoubleArray(logits.size) { exp((logits[it] - max).toDouble()) }
        val sum = exps.sum()
        return exps.indices.sortedByDescending { exps[it] }.take(k).map { it to (exps[it] / sum).toFloat() }
    }
}
