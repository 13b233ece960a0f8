# Demo, stage 1 (tools/demo.py --task deblur), motion deblurring: the GoPro recipe's
# network and data protocol with a small DiffIR and a few-minute CPU
# schedule on scikit-image photos (tools/demo.py writes them and sets the data roots).
_base_ = ['../_base_/models/diffir_deblur.py', './_base_/demo_data_deblur.py',
          './_base_/demo_runtime_s1.py']

model = dict(generator=_base_.demo_generator)
