# Demo, stage 2 (tools/demo.py --task deblur): CPEN_S2 + IPR diffusion taught by the demo's
# stage 1 (tools/demo.py sets model.stage1_checkpoint to that run's last checkpoint).
_base_ = ['../_base_/models/diffir_deblur.py', './_base_/demo_data_deblur.py',
          './_base_/demo_runtime_s2.py']

model = dict(_base_.demo_s2_model,
             stage1_checkpoint='work_dirs/diffir_demo_deblur_s1/iter_1200.pth')
