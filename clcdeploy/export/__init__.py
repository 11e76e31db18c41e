"""Export: deployment rewrites (BN folding, IGC lowering), one module per artifact format, validation
against eager PyTorch, delegation inspection and the manifest. `export_model` in `pipeline` ties them
together; `commands` registers `clcdeploy export`.
"""
