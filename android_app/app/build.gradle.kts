import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.clcdeploy.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.clcdeploy.demo"
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // Each benchmark result names the runtime library that ran it (Runners.library).
        buildConfigField("String", "EXECUTORCH_VERSION", "\"${libs.versions.executorch.get()}\"")
        buildConfigField("String", "LITERT_VERSION", "\"${libs.versions.litert.get()}\"")
        ndk {
            // The paper's phone class is 32-bit ARMv7; current phones are arm64.
            abiFilters += listOf("armeabi-v7a", "arm64-v8a")
        }
    }

    // Two builds of the same app (same applicationId, same benchmark protocol):
    //  full   - ExecuTorch (.pte) + LiteRT (.tflite); minSdk 23 because the ExecuTorch AAR declares 23.
    //  legacy - LiteRT only, minSdk 22 (Android 5.1, the clcNet paper's BLU Advance 5.2 class).
    // ExecuTorch ships native code for arm64-v8a only (of these two ABIs): on an armeabi-v7a device
    // the full build reports the .pte runtime as unavailable instead of crashing.
    flavorDimensions += "runtime"
    productFlavors {
        create("full") {
            dimension = "runtime"
            minSdk = 23
        }
        create("legacy") {
            dimension = "runtime"
            minSdk = 22
            versionNameSuffix = "-legacy"
        }
    }

    buildTypes {
        // Use the debug build for benchmarking: `run-as` (how the harness reads the result) needs a
        // debuggable app. The runtimes' native code is prebuilt and optimised either way.
        release {
            isMinifyEnabled = false
        }
    }

    buildFeatures {
        buildConfig = true // off by default since AGP 8
    }

    androidResources {
        // Models are copied out of the APK before loading; keep them uncompressed so that is a plain copy.
        noCompress += listOf("pte", "tflite")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    "fullImplementation"(libs.executorch.android)
    implementation(libs.litert)
}
