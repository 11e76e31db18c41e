#!/usr/bin/env bash
# Build the demo Android app (android_app/) with the exported models bundled in its assets.
#
#   scripts/build_app.sh [NAME ...]      # default: every models/NAME/ that holds a manifest.json
#
# Copies models/NAME/{NAME.pte,NAME.tflite,manifest.json} into android_app/app/src/main/assets/models/NAME/,
# an optional labels.txt (LABELS=path, or models/labels.txt) and a sample image (SAMPLE_IMAGE=path, default
# matplotlib's grace_hopper.jpg), then runs Gradle: assembleFullDebug (ExecuTorch + LiteRT, minSdk 23) and
# assembleLegacyDebug (LiteRT only, minSdk 22). Debug builds, because the harness reads results with run-as.
#
# Environment: MODELS_DIR (default models), ANDROID_HOME or ANDROID_SDK_ROOT, GRADLE (a Gradle >= 8, used once
# to create the wrapper, which then runs the Gradle pinned in gradle-wrapper.properties), CLC_SKIP_NETWORK_CHECK=1
# (skip the Maven reachability probe).
# Exit 2 with one line naming everything that is missing or unusable when a prerequisite is absent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app="$root/android_app"
models_dir="${MODELS_DIR:-$root/models}"
versions="$app/gradle/libs.versions.toml"
compile_sdk="$(sed -n 's/^ *compileSdk *= *\([0-9][0-9]*\).*/\1/p' "$app/app/build.gradle.kts" | head -1)"
version_of() { sed -n "s/^$1 *= *\"\([^\"]*\)\".*/\1/p" "$versions" | head -1; }
gradle_version="$(sed -n 's/.*gradle-\([0-9.]*\)-bin\.zip.*/\1/p' "$app/gradle/wrapper/gradle-wrapper.properties")"

problems=()

python=""
for py in "$root/.venv/bin/python" python3; do
    if "$py" -c '' >/dev/null 2>&1; then python="$py"; break; fi
done

# The bundled artifacts (.pte, .tflite) of manifest $1 exported with --fused-igc: they call clcdeploy's own
# kernel, which the app's ExecuTorch and LiteRT do not have. Without a Python, any such entry counts.
fused_artifacts() {
    if [ -n "$python" ]; then
        "$python" - "$1" <<'PY' 2>/dev/null || true
import json, sys
try:
    formats = json.load(open(sys.argv[1])).get("formats") or {}
    fused = [entry.get("file") or fmt for fmt, entry in formats.items() if fmt in ("pte", "tflite")
             and isinstance(entry, dict) and (entry.get("extra") or {}).get("needs_kernel_library")]
    print(" ".join(fused))
except (OSError, ValueError, AttributeError):
    pass
PY
    elif grep -q '"needs_kernel_library": *true' "$1"; then
        echo "an artifact"
    fi
}

# 1. exported models
names=("$@")
if [ ${#names[@]} -eq 0 ] && [ -d "$models_dir" ]; then
    for manifest in "$models_dir"/*/manifest.json; do
        [ -e "$manifest" ] && names+=("$(basename "$(dirname "$manifest")")")
    done
fi
if [ ${#names[@]} -eq 0 ]; then
    problems+=("no exported models in $models_dir (run: clcdeploy export NAME --formats pte,tflite)")
fi
for name in "${names[@]}"; do
    dir="$models_dir/$name"
    if [ ! -f "$dir/manifest.json" ]; then
        problems+=("$dir/manifest.json is missing (run: clcdeploy export $name)")
    elif [ ! -f "$dir/$name.pte" ] && [ ! -f "$dir/$name.tflite" ]; then
        problems+=("$dir has neither $name.pte nor $name.tflite (run: clcdeploy export $name --formats pte,tflite)")
    else
        fused="$(fused_artifacts "$dir/manifest.json")"
        [ -z "$fused" ] || problems+=("$name: $fused was exported with --fused-igc (extra.needs_kernel_library) and needs clcdeploy's kernel library, which the app lacks (export it again without --fused-igc)")
    fi
done

# 2. JDK 17+
if ! command -v java >/dev/null 2>&1; then
    problems+=("no java on PATH (install JDK 17, e.g. Android Studio's bundled JBR, and set JAVA_HOME)")
else
    java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.[0-9]*\)*.*".*/\1/p' | head -1)"
    if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
        problems+=("java is version ${java_major:-unknown}, the Android Gradle plugin needs JDK 17 or newer")
    fi
fi

# 3. Android SDK with the compile platform and build-tools
sdk="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"
if [ -z "$sdk" ] && [ -f "$app/local.properties" ]; then
    sdk="$(sed -n 's/^sdk\.dir=//p' "$app/local.properties" | head -1)"
fi
if [ -z "$sdk" ]; then
    problems+=("ANDROID_HOME is not set (install the Android SDK; sdkmanager \"platforms;android-$compile_sdk\" \"build-tools;35.0.0\")")
elif [ ! -d "$sdk" ]; then
    problems+=("ANDROID_HOME=$sdk does not exist")
else
    [ -d "$sdk/platforms/android-$compile_sdk" ] || problems+=("SDK platform android-$compile_sdk is missing in $sdk (sdkmanager \"platforms;android-$compile_sdk\")")
    compgen -G "$sdk/build-tools/*" >/dev/null || problems+=("no build-tools in $sdk (sdkmanager \"build-tools;35.0.0\")")
fi

# 4. Gradle: the wrapper, or a local Gradle >= 8 to create it (distributions such as Debian's ship 4.4.1)
gradle_bin="${GRADLE-$(command -v gradle || true)}"
if [ ! -x "$app/gradlew" ]; then
    if [ -z "$gradle_bin" ] || [ ! -x "$gradle_bin" ]; then
        problems+=("no Gradle wrapper in android_app/ and no gradle to create it (install Gradle >= 8 and put it on PATH or in GRADLE, or build android_app/ in Android Studio)")
    else
        found="$("$gradle_bin" --version 2>/dev/null | sed -n 's/^Gradle \([0-9][0-9.]*\).*/\1/p' | head -1 || true)"
        if [ -z "$found" ] || [ "${found%%.*}" -lt 8 ]; then
            problems+=("$gradle_bin is Gradle ${found:-of unknown version}, and creating the wrapper needs Gradle >= 8 (the wrapper then runs Gradle $gradle_version)")
        fi
    fi
fi

# 5. the Maven repositories (only probed once everything local is in place)
if [ ${#problems[@]} -eq 0 ] && [ "${CLC_SKIP_NETWORK_CHECK:-0}" != 1 ] && command -v curl >/dev/null 2>&1; then
    lr="$(version_of litert)"; et="$(version_of executorch)"
    google="https://dl.google.com/dl/android/maven2/com/google/ai/edge/litert/litert/$lr/litert-$lr.pom"
    central="https://repo.maven.apache.org/maven2/org/pytorch/executorch-android/$et/executorch-android-$et.pom"
    curl -sfI --max-time 15 "$google" >/dev/null || problems+=("Google Maven is unreachable or lacks com.google.ai.edge.litert:litert:$lr ($google)")
    curl -sfI --max-time 15 "$central" >/dev/null || problems+=("Maven Central is unreachable or lacks org.pytorch:executorch-android:$et ($central)")
fi

if [ ${#problems[@]} -gt 0 ]; then
    joined="$(printf '%s; ' "${problems[@]}")"
    echo "build_app.sh: cannot build the app: ${joined%; }" >&2
    exit 2
fi

# Copy the models (and labels, sample image) into the app's assets.
assets="$app/app/src/main/assets"
rm -rf "$assets/models"
for name in "${names[@]}"; do
    mkdir -p "$assets/models/$name"
    for f in manifest.json "$name.pte" "$name.tflite"; do
        [ -f "$models_dir/$name/$f" ] && cp "$models_dir/$name/$f" "$assets/models/$name/"
    done
    echo "bundled $name: $(ls "$assets/models/$name" | tr '\n' ' ')"
done
labels="${LABELS:-$models_dir/labels.txt}"
[ -f "$labels" ] && cp "$labels" "$assets/labels.txt" && echo "bundled labels from $labels"
sample="${SAMPLE_IMAGE:-}"
if [ -z "$sample" ]; then
    for py in "$root/.venv/bin/python" python3; do
        sample="$("$py" -c 'import matplotlib, os; print(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))' 2>/dev/null)" && break
    done
fi
if [ -n "$sample" ] && [ -f "$sample" ]; then cp "$sample" "$assets/sample.jpg"; echo "bundled sample image $sample"; fi

cd "$app"
if [ ! -x ./gradlew ]; then
    # In an empty scratch build: run here, the wrapper task would configure this build, whose Android Gradle
    # plugin refuses any Gradle older than its own minimum. Only the scripts and the jar are taken; the
    # committed gradle-wrapper.properties keeps pinning the distribution.
    scratch="$(mktemp -d)"
    touch "$scratch/settings.gradle.kts"
    (cd "$scratch" && "$gradle_bin" --no-daemon -q wrapper --gradle-version "$gradle_version" --distribution-type bin)
    cp "$scratch/gradlew" "$scratch/gradlew.bat" ./
    cp "$scratch/gradle/wrapper/gradle-wrapper.jar" gradle/wrapper/
    rm -rf "$scratch"
fi
[ -n "$sdk" ] && [ ! -f local.properties ] && echo "sdk.dir=$sdk" > local.properties
./gradlew --no-daemon assembleFullDebug assembleLegacyDebug
echo "APKs:"
ls -1 "$app"/app/build/outputs/apk/*/debug/*.apk
