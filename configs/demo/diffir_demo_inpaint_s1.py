# Demo, stage 1 (tools/demo.py --task inpaint): the inpainting recipe's model (DIRformer + CPEN_S1,
# LaMa losses, NLayer discriminator) with a small DiffIR and a few-minute CPU schedule on
# scikit-image photos with LaMa masks (tools/demo.py writes them and sets the data roots).
_base_ = ['../_base_/models/diffir_inpaint_s1.py', './_base_/demo_data_inpaint.py',
          './_base_/demo_runtime_inpaint.py']

optim_wrapper = _base_.demo_optim_wrapper
model = _base_.demo_model
