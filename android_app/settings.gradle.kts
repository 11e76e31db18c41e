// clcdeploy demo app: classification demo + headless benchmark (see README "Android demo app").
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()       // LiteRT (com.google.ai.edge.litert), Android Gradle plugin
        mavenCentral() // ExecuTorch (org.pytorch:executorch-android) and its fbjni/soloader
    }
}

rootProject.name = "ClcDeployDemo"
include(":app")
