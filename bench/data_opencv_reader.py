"""The original reader's method (OpenCV): decode every frame, keep every (int(fps) // fps + 1)-th,
resize the shorter side to 256 (cubic), crop 224 moved 16 px up, rotate 180 degrees, write JPEG.
Used as the oracle in the extraction tests and as the baseline in the extraction benchmark.

usage: data_opencv_reader.py VIDEO_DIR SAVE_DIR [--fps 5] [--seg-len 288]
prints a JSON line: {"frames": ..., "seconds": ..., "video_seconds": ...}
"""
import argparse
import json
import os
import time

import cv2

p = argparse.ArgumentParser()
p.add_argument('data')
p.add_argument('save_dir')
p.add_argument('--fps', default=5, type=int)
p.add_argument('--seg-len', default=288, type=int)
args = p.parse_args()
cv2.setNumThreads(1)

t0 = time.time()
file_list = sorted(os.listdir(args.data))
class_counter = 0
img_counter = 0
final_size = 224
resized_minor_length = 256
n_imgs_per_class = args.seg_len * args.fps
curr_dir_name = os.path.join(args.save_dir, 'class_{:04d}'.format(class_counter))
os.makedirs(curr_dir_name, exist_ok=True)
frames = 0
video_seconds = 0.0
for file_indx in file_list:
    cap = cv2.VideoCapture(os.path.join(args.data, file_indx))
    frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frame_width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    frame_height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frame_rate = int(cap.get(cv2.CAP_PROP_FPS))
    video_seconds += frame_count / cap.get(cv2.CAP_PROP_FPS)
    sample_rate = frame_rate // args.fps + 1
    new_height = frame_height * resized_minor_length // min(frame_height, frame_width)
    new_width = frame_width * resized_minor_length // min(frame_height, frame_width)
    fc = 0
    while fc < frame_count:
        ret, frame = cap.read()
        if fc % sample_rate == 0 and ret:
            resized = cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_CUBIC)
            height, width, _ = resized.shape
            startx = width // 2 - (final_size // 2)
            starty = height // 2 - (final_size // 2) - 16
            cropped = resized[starty:starty + final_size, startx:startx + final_size]
            cv2.imwrite(os.path.join(curr_dir_name, 'img_{:04d}.jpeg'.format(img_counter)), cropped[::-1, ::-1, :])
            frames += 1
            img_counter += 1
            if img_counter == n_imgs_per_class:
                img_counter = 0
                class_counter += 1
                curr_dir_name = os.path.join(args.save_dir, 'class_{:04d}'.format(class_counter))
                os.makedirs(curr_dir_name, exist_ok=True)
        fc += 1
    cap.release()
print(json.dumps({'frames': frames, 'seconds': time.time() - t0, 'video_seconds': video_seconds}))
