# The baselines' PSPNet-VGG-16 with the released encoder cut (before conv4_3's ReLU, final_relu=False).
_base_ = ['./pspnet_vgg16.py']
model = dict(backbone=dict(final_relu=False))
